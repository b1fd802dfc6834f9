//! Live reply streams of running chat turns, by task id (this process only):
//! the chat API's stream endpoint subscribes; the final state always comes
//! from the database, so a turn running in another process is still seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct StreamHub {
    inner: Arc<Mutex<HashMap<Uuid, broadcast::Sender<StreamMsg>>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamMsg {
    Delta(String),
    Done,
}

impl StreamHub {
    pub(crate) fn open(&self, task: Uuid) -> broadcast::Sender<StreamMsg> {
        let (tx, _) = broadcast::channel(256);
        if let Ok(mut m) = self.inner.lock() {
            m.insert(task, tx.clone());
        }
        tx
    }

    pub(crate) fn close(&self, task: Uuid) {
        if let Ok(mut m) = self.inner.lock()
            && let Some(tx) = m.remove(&task)
        {
            // Nobody listening is fine: the stream endpoint reads the outcome from the database.
            let _ = tx.send(StreamMsg::Done);
        }
    }

    /// Subscribes to a turn running in this process, if it is.
    pub fn subscribe(&self, task: Uuid) -> Option<broadcast::Receiver<StreamMsg>> {
        self.inner
            .lock()
            .ok()?
            .get(&task)
            .map(broadcast::Sender::subscribe)
    }
}
