use sea_orm::entity::prelude::*;

/// A team's OAuth2 client: a user-facing application (authorization code)
/// or a machine (client credentials).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_apps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    #[sea_orm(unique)]
    pub client_id: String,
    pub name: String,
    pub kind: String,
    pub confidential: bool,
    /// Hex SHA-256 of the client secret (confidential clients); shown once.
    pub secret_hash: Option<String>,
    /// Exact-match redirect URIs, a JSON array of strings.
    pub redirect_uris: Json,
    pub pkce_required: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
