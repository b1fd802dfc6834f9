//! Teams, users, memberships, API keys and chatbots (working versions and
//! snapshots in one table).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    IsActive,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    TeamId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Prefix,
    HashedKey,
    Name,
    TeamId,
    UserId,
    ReadOnly,
    Revoked,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Chatbots {
    Table,
    Id,
    PublicId,
    TeamId,
    WorkingVersionId,
    Name,
    Description,
    Config,
    VersionNumber,
    IsDefaultVersion,
    IsArchived,
    VersionDescription,
    OwnerId,
    CreatedAt,
    UpdatedAt,
}

fn ts<T: IntoIden>(c: T) -> ColumnDef {
    timestamp_with_time_zone(c)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Settings::Table)
                .col(string_len(Settings::Key, 64).primary_key())
                .col(text(Settings::Value))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Teams::Table)
                .col(big_pk_auto(Teams::Id))
                .col(string_len_uniq(Teams::Slug, 50))
                .col(string_len(Teams::Name, 100))
                .col(ts(Teams::CreatedAt))
                .col(ts(Teams::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(big_pk_auto(Users::Id))
                .col(string_len_uniq(Users::Username, 150))
                .col(string_len(Users::Email, 254))
                .col(boolean(Users::IsActive).default(true))
                .col(ts(Users::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(big_pk_auto(Memberships::Id))
                .col(big_integer(Memberships::TeamId))
                .col(big_integer(Memberships::UserId))
                .col(string_len(Memberships::Role, 32))
                .col(ts(Memberships::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Memberships::Table, Memberships::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Memberships::Table, Memberships::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("memberships_team_user_key")
                .table(Memberships::Table)
                .col(Memberships::TeamId)
                .col(Memberships::UserId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(big_pk_auto(ApiKeys::Id))
                .col(string_len_uniq(ApiKeys::Prefix, 16))
                .col(string_len(ApiKeys::HashedKey, 64))
                .col(string_len(ApiKeys::Name, 50))
                .col(big_integer(ApiKeys::TeamId))
                .col(big_integer(ApiKeys::UserId))
                .col(boolean(ApiKeys::ReadOnly).default(true))
                .col(boolean(ApiKeys::Revoked).default(false))
                .col(ts(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_keys_team_idx")
                .table(ApiKeys::Table)
                .col(ApiKeys::TeamId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Chatbots::Table)
                .col(big_pk_auto(Chatbots::Id))
                .col(uuid_uniq(Chatbots::PublicId))
                .col(big_integer(Chatbots::TeamId))
                .col(big_integer_null(Chatbots::WorkingVersionId))
                .col(string_len(Chatbots::Name, 128))
                .col(text(Chatbots::Description).default(""))
                .col(json_binary(Chatbots::Config))
                .col(integer(Chatbots::VersionNumber).default(1))
                .col(boolean(Chatbots::IsDefaultVersion).default(false))
                .col(boolean(Chatbots::IsArchived).default(false))
                .col(text(Chatbots::VersionDescription).default(""))
                .col(big_integer_null(Chatbots::OwnerId))
                .col(ts(Chatbots::CreatedAt))
                .col(ts(Chatbots::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Chatbots::Table, Chatbots::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Chatbots::Table, Chatbots::WorkingVersionId)
                        .to(Chatbots::Table, Chatbots::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Chatbots::Table, Chatbots::OwnerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .check(Expr::cust(
                    "NOT (is_default_version AND working_version_id IS NULL)",
                ))
                .to_owned(),
        )
        .await?;
        // The list query: a team's live working versions, newest first.
        m.create_index(
            Index::create()
                .name("chatbots_list_idx")
                .table(Chatbots::Table)
                .col(Chatbots::TeamId)
                .col(Chatbots::CreatedAt)
                .col(Chatbots::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("chatbots_family_version_key")
                .table(Chatbots::Table)
                .col(Chatbots::WorkingVersionId)
                .col(Chatbots::VersionNumber)
                .unique()
                .to_owned(),
        )
        .await?;
        // At most one published snapshot per family. Partial indexes read the
        // same on both backends, so one statement serves both.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX chatbots_one_default_per_family \
                 ON chatbots (working_version_id) WHERE is_default_version",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "chatbots",
            "api_keys",
            "memberships",
            "users",
            "teams",
            "settings",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
