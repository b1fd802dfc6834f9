use sea_orm::entity::prelude::*;

/// The timer of a timeout trigger in one session: armed by the participant's
/// last message (`reference_message_id`), due at `next_at`, fired `fired` of
/// `times` times. The trigger's `seconds`, `times` and `action` are copied
/// in, so editing the trigger never changes a timer already armed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "timeout_timers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub session_id: i64,
    pub chatbot_row: i64,
    pub trigger_index: i32,
    pub reference_message_id: i64,
    pub seconds: i64,
    pub times: i32,
    pub fired: i32,
    pub action: Json,
    pub next_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
