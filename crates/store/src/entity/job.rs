use sea_orm::entity::prelude::*;

/// A unit of durable work. Claimed under a lease; a worker that dies lets the
/// lease lapse and another worker retries the job.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub task_id: Uuid,
    pub kind: String,
    pub payload: Json,
    /// `queued`, `running`, `succeeded`, `failed` (a final, reported failure) or `dead`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// How many times a handler ran to completion (1 for every finished job).
    pub runs: i32,
    pub run_at: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    pub locked_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub result: Option<Json>,
    pub idempotency_key: Option<String>,
    pub session_id: Option<i64>,
    pub team_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
