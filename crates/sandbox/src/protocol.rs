//! What the server and a worker say to each other over the worker's stdin
//! and stdout: postcard frames, each behind a 4-byte little-endian length.
//! Postcard (not JSON) because interpreter values include floats JSON
//! cannot carry (`nan`, `inf`) and bytes.

use std::io::{self, Read, Write};
use std::time::Duration;

use monty_types::{MontyException, MontyObject};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One run's budgets inside the worker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Interpreter execution time (time waiting on the host does not count).
    pub cpu: Duration,
    /// Bytes the run may hold on the heap beyond what the worker held before it.
    pub memory: usize,
    pub recursion: usize,
    /// Calls to the host (helpers, `http`) one run may make.
    pub host_calls: usize,
    /// Bytes of `print` output kept.
    pub print: usize,
}

/// Server → worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    Run {
        program: String,
        inputs: Vec<MontyObject>,
        budget: Budget,
    },
    /// The answer to the last [`FromWorker::Call`].
    Reply(Reply),
}

/// The host's answer to a call.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Return(MontyObject),
    /// Raised where the call was made (the code may catch it).
    Raise(MontyException),
    /// Ends the run at once; the code cannot catch it.
    Stop(MontyException),
}

/// Worker → server.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// Sent once at start: whether heap accounting is armed (memory budgets
    /// hold only when it is).
    Ready { memory_accounting: bool },
    Call {
        name: String,
        args: Vec<MontyObject>,
        kwargs: Vec<(MontyObject, MontyObject)>,
    },
    Done {
        result: Result<MontyObject, MontyException>,
        print: String,
        /// Print output past the budget was dropped.
        print_truncated: bool,
    },
}

pub fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let body = postcard::to_stdvec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::other("frame too large"))?
        .to_le_bytes();
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len);
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    postcard::from_bytes(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok(len)
}

/// Blocking read of one frame (the worker's side); `None` at end of input.
pub fn read_blocking<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(header)?];
    r.read_exact(&mut body)?;
    decode(&body).map(Some)
}

pub fn write_blocking<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&encode(msg)?)?;
    w.flush()
}
