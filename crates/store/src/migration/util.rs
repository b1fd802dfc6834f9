//! Column, key and index shorthands shared by the migrations written with
//! string identifiers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) fn ts(c: &'static str) -> ColumnDef {
    timestamp_with_time_zone(c)
}

pub(super) fn ts_null(c: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(c)
}

/// A foreign key from `table.col` to `to.id`.
pub(super) fn fk(
    table: &'static str,
    col: &'static str,
    to: &'static str,
    action: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(to, "id")
        .on_delete(action)
        .to_owned()
}

pub(super) fn index(
    name: &'static str,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

/// A table to create and the indexes its queries read by, created right
/// after it in the order they were named.
pub(super) struct NewTable {
    name: &'static str,
    table: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
}

impl NewTable {
    /// A table with only the columns given to it.
    pub(super) fn bare(name: &'static str) -> Self {
        let mut table = Table::create();
        table.table(name);
        Self {
            name,
            table,
            indexes: Vec::new(),
        }
    }

    /// A table keyed by a serial `id`.
    pub(super) fn new(name: &'static str) -> Self {
        Self::bare(name).col(big_pk_auto("id"))
    }

    /// A team's rows: `id`, then `team_id`, deleted with the team.
    pub(super) fn of_team(name: &'static str) -> Self {
        Self::new(name).col(big_integer("team_id")).fk(
            "team_id",
            "teams",
            ForeignKeyAction::Cascade,
        )
    }

    pub(super) fn col(mut self, col: impl IntoColumnDef) -> Self {
        self.table.col(col);
        self
    }

    /// `col` refers to `to.id`.
    pub(super) fn fk(
        mut self,
        col: &'static str,
        to: &'static str,
        action: ForeignKeyAction,
    ) -> Self {
        self.table.foreign_key(&mut fk(self.name, col, to, action));
        self
    }

    /// A primary key of these columns (for tables without an `id`).
    pub(super) fn primary_key(mut self, cols: &[&'static str]) -> Self {
        let mut key = Index::create();
        for c in cols {
            key.col(*c);
        }
        self.table.primary_key(&mut key);
        self
    }

    pub(super) fn check(mut self, sql: &'static str) -> Self {
        self.table.check(Expr::cust(sql));
        self
    }

    pub(super) fn index(mut self, name: &'static str, cols: &[&'static str]) -> Self {
        self.indexes.push(index(name, self.name, cols, false));
        self
    }

    pub(super) fn unique(mut self, name: &'static str, cols: &[&'static str]) -> Self {
        self.indexes.push(index(name, self.name, cols, true));
        self
    }

    pub(super) async fn create(self, m: &SchemaManager<'_>) -> Result<(), DbErr> {
        m.create_table(self.table).await?;
        for i in self.indexes {
            m.create_index(i).await?;
        }
        Ok(())
    }
}

/// SQLite takes one column per ALTER TABLE, so each column is its own statement.
pub(super) async fn add_column(
    m: &SchemaManager<'_>,
    table: &'static str,
    col: impl IntoColumnDef,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

pub(super) async fn drop_column(
    m: &SchemaManager<'_>,
    table: &'static str,
    col: &'static str,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
        .await
}

pub(super) async fn drop_index(
    m: &SchemaManager<'_>,
    name: &'static str,
    table: &'static str,
) -> Result<(), DbErr> {
    m.drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

/// Drops the tables in the order given (dependents first).
pub(super) async fn drop_tables(
    m: &SchemaManager<'_>,
    tables: &[&'static str],
) -> Result<(), DbErr> {
    for t in tables {
        m.drop_table(Table::drop().table(*t).to_owned()).await?;
    }
    Ok(())
}
