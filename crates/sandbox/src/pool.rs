//! The server's side: a pool of worker processes, each running one program
//! at a time, and the run loop that answers their calls through a [`Host`].
//!
//! A worker that exceeds the wall-clock limit is killed (so nothing a
//! program does can hold a turn past it); one that dies is replaced. Idle
//! workers are kept for the next run, up to the pool's size.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use monty_types::{MontyException, MontyObject, OOM_EXIT_CODE};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use crate::protocol::{self, Budget, FromWorker, Reply, ToWorker};

/// How to start a worker: the `chatstudio` binary and its hidden subcommand.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This binary as a worker (the server's case).
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(WorkerCommand {
            program: std::env::current_exe()?,
            args: vec!["sandbox-worker".into()],
        })
    }
}

/// Limits of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Interpreter execution time (the CPU budget).
    pub cpu: Duration,
    /// Heap the run may use, in bytes.
    pub memory: usize,
    /// Wall clock from start to end, host calls included.
    pub wall: Duration,
    pub recursion: usize,
    pub host_calls: usize,
    pub print: usize,
}

impl Default for Limits {
    /// The defaults a node gets when it sets none.
    fn default() -> Self {
        Limits {
            cpu: Duration::from_secs(1),
            memory: 32 << 20,
            wall: Duration::from_secs(30),
            recursion: 200,
            host_calls: 1_000,
            print: 16 * 1024,
        }
    }
}

impl Limits {
    /// The server's maximum a node may ask for.
    pub fn maximum() -> Self {
        Limits {
            cpu: Duration::from_secs(10),
            memory: 256 << 20,
            wall: Duration::from_secs(120),
            recursion: 1_000,
            host_calls: 10_000,
            print: 64 * 1024,
        }
    }

    /// Each limit at most the other's.
    pub fn capped(self, max: &Limits) -> Self {
        Limits {
            cpu: self.cpu.min(max.cpu),
            memory: self.memory.min(max.memory),
            wall: self.wall.min(max.wall),
            recursion: self.recursion.min(max.recursion),
            host_calls: self.host_calls.min(max.host_calls),
            print: self.print.min(max.print),
        }
    }
}

/// One call the code made to a helper.
#[derive(Debug)]
pub struct Call {
    pub name: String,
    pub args: Vec<MontyObject>,
    pub kwargs: Vec<(MontyObject, MontyObject)>,
}

/// What answers the code's helper calls (the pipeline node, in the engine).
#[async_trait]
pub trait Host: Send {
    async fn call(&mut self, call: Call) -> Reply;
}

/// A run that finished: main's result as text, or the exception it raised.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<String, MontyException>,
    pub print: String,
    pub print_truncated: bool,
}

/// A run the sandbox ended, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the code ran longer than its wall-clock limit of {0:?}")]
    WallClock(Duration),
    #[error("the code used more than its memory limit of {} MiB", .0 >> 20)]
    Memory(usize),
    #[error("the sandbox worker stopped unexpectedly ({0})")]
    Crashed(String),
    #[error("the sandbox could not start a worker: {0}")]
    Spawn(String),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    async fn spawn(cmd: &WorkerCommand) -> Result<Worker, RunError> {
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RunError::Spawn(format!("{}: {e}", cmd.program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(RunError::Spawn("no pipes to the worker".into()));
        };
        let mut w = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready = timeout_at(Instant::now() + Duration::from_secs(10), w.read())
            .await
            .map_err(|_| RunError::Spawn("the worker did not start in 10 s".into()))?;
        match ready {
            Ok(FromWorker::Ready {
                memory_accounting: true,
            }) => Ok(w),
            // Without accounting a memory budget would silently not hold.
            Ok(FromWorker::Ready { .. }) => Err(RunError::Spawn(format!(
                "{} does not account memory (its allocator is not sandbox::Accounting)",
                cmd.program.display()
            ))),
            Ok(_) => Err(RunError::Spawn("the worker spoke out of turn".into())),
            Err(_) => Err(RunError::Spawn(format!(
                "{} is not a sandbox worker",
                cmd.program.display()
            ))),
        }
    }

    async fn read<T: DeserializeOwned>(&mut self) -> std::io::Result<T> {
        let mut header = [0u8; 4];
        self.stdout.read_exact(&mut header).await?;
        let mut body = vec![0u8; protocol::frame_len(header)?];
        self.stdout.read_exact(&mut body).await?;
        protocol::decode(&body)
    }

    async fn send(&mut self, msg: &ToWorker) -> std::io::Result<()> {
        self.stdin.write_all(&protocol::encode(msg)?).await?;
        self.stdin.flush().await
    }

    /// Why a worker whose pipe broke is gone.
    async fn died(mut self, memory: usize) -> RunError {
        let status = timeout_at(Instant::now() + Duration::from_secs(2), self.child.wait()).await;
        match status {
            Ok(Ok(s)) if s.code() == Some(OOM_EXIT_CODE) => RunError::Memory(memory),
            Ok(Ok(s)) => RunError::Crashed(s.to_string()),
            _ => {
                let _ = self.child.start_kill();
                RunError::Crashed("no exit status".into())
            }
        }
    }
}

/// Worker processes ready to run code.
pub struct Pool {
    command: WorkerCommand,
    idle: Mutex<Vec<Worker>>,
    slots: Semaphore,
    size: usize,
    /// What a node may ask for at most.
    pub maximum: Limits,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("command", &self.command)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` workers running at once (started on demand).
    pub fn new(command: WorkerCommand, size: usize, maximum: Limits) -> Self {
        let size = size.max(1);
        Pool {
            command,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size),
            size,
            maximum,
        }
    }

    fn take_idle(&self) -> Option<Worker> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, w: Worker) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.size
        {
            idle.push(w);
        }
    }

    /// Runs `source` (a code node's `main`) with `input` and `kwargs`,
    /// answering its helper calls through `host`.
    pub async fn run(
        &self,
        source: &str,
        input: MontyObject,
        kwargs: MontyObject,
        limits: Limits,
        host: &mut dyn Host,
    ) -> Result<Outcome, RunError> {
        let limits = limits.capped(&self.maximum);
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| RunError::Spawn("the sandbox is shut down".into()))?;
        let mut inputs = vec![
            input,
            kwargs,
            MontyObject::Function {
                name: "_cs_local".into(),
                docstring: None,
            },
        ];
        inputs.extend(
            crate::source::HELPERS
                .iter()
                .map(|h| MontyObject::Function {
                    name: (*h).to_string(),
                    docstring: None,
                }),
        );
        let request = ToWorker::Run {
            program: source.to_string(),
            inputs,
            budget: Budget {
                cpu: limits.cpu,
                memory: limits.memory,
                recursion: limits.recursion,
                host_calls: limits.host_calls,
                print: limits.print,
            },
        };
        // An idle worker may have died since its last run: one that cannot
        // take the request is replaced before anything ran.
        let reused = match self.take_idle() {
            Some(mut w) => w.send(&request).await.is_ok().then_some(w),
            None => None,
        };
        let mut worker = match reused {
            Some(w) => w,
            None => {
                let mut fresh = Worker::spawn(&self.command).await?;
                fresh
                    .send(&request)
                    .await
                    .map_err(|e| RunError::Spawn(e.to_string()))?;
                fresh
            }
        };
        // The wall clock is the code's: from its start, not from the wait for a slot.
        let deadline = Instant::now() + limits.wall;
        let converse = async {
            loop {
                match worker.read::<FromWorker>().await? {
                    FromWorker::Call { name, args, kwargs } => {
                        let reply = host.call(Call { name, args, kwargs }).await;
                        worker.send(&ToWorker::Reply(reply)).await?;
                    }
                    FromWorker::Done {
                        result,
                        print,
                        print_truncated,
                    } => return Ok::<_, std::io::Error>((result, print, print_truncated)),
                    FromWorker::Ready { .. } => {
                        return Err(std::io::Error::other("the worker restarted"));
                    }
                }
            }
        };
        match timeout_at(deadline, converse).await {
            Err(_) => {
                // A worker past its deadline may be stuck anywhere: it goes.
                let _ = worker.child.start_kill();
                Err(RunError::WallClock(limits.wall))
            }
            Ok(Err(_)) => Err(worker.died(limits.memory).await),
            Ok(Ok((result, print, print_truncated))) => {
                self.put_idle(worker);
                let result = result.map(|v| match v {
                    MontyObject::String(s) => s,
                    other => other.to_string(),
                });
                Ok(Outcome {
                    result,
                    print,
                    print_truncated,
                })
            }
        }
    }
}
