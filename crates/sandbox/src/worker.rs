//! The worker process (`chatstudio sandbox-worker`): runs one program at a
//! time, read from stdin, answering host calls through the server.
//!
//! The interpreter has no file system, network or environment of its own:
//! `open`, `os.getenv` and the like reach the host as OS calls, which the
//! worker refuses; names the host does not define are `NameError`s. The
//! worker also starts with an empty environment, `/` as its directory, and
//! (by rlimit) no way to open another file descriptor or write a file.

use std::borrow::Cow;
use std::io::{self, BufReader, BufWriter, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monty::{MontyRun, RunProgress};
use monty_types::{
    ExcType, ExtFunctionResult, MontyException, MontyObject, PrintWriter, PrintWriterCallback,
    ResourceLimits, ResourceTracker,
};
use rand::Rng;

use crate::alloc;
use crate::protocol::{Budget, FromWorker, Reply, ToWorker, read_blocking, write_blocking};
use crate::source::{self, HELPERS};

/// Serves runs on stdin/stdout until stdin closes. Returns the exit code.
pub fn serve_stdio() -> i32 {
    let accounting = alloc::arm();
    restrict();
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    if write_blocking(
        &mut output,
        &FromWorker::Ready {
            memory_accounting: accounting,
        },
    )
    .is_err()
    {
        return 1;
    }
    let started = Instant::now();
    loop {
        let msg: ToWorker = match read_blocking(&mut input) {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(_) => return 1,
        };
        let ToWorker::Run {
            program,
            inputs,
            budget,
        } = msg
        else {
            return 1;
        };
        let mut host = Pipe {
            input: &mut input,
            output: &mut output,
            started,
        };
        let done = run(&program, inputs, budget, accounting, &mut host);
        alloc::end_run();
        if write_blocking(&mut output, &done).is_err() {
            return 1;
        }
    }
}

/// Defence in depth under the interpreter's own isolation: no new file
/// descriptors (files, sockets) and no file writes.
fn restrict() {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let _ = setrlimit(Resource::Fsize, none);
    // Descriptors 0-2 stay usable; nothing above them can be opened.
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(3),
            maximum: Some(3),
        },
    );
}

/// The server's side of the pipe, as the run loop sees it.
trait Host {
    fn call(
        &mut self,
        name: String,
        args: Vec<MontyObject>,
        kwargs: Vec<(MontyObject, MontyObject)>,
    ) -> io::Result<Reply>;
    fn started(&self) -> Instant;
}

struct Pipe<'a, R: io::Read, W: Write> {
    input: &'a mut R,
    output: &'a mut W,
    started: Instant,
}

impl<R: io::Read, W: Write> Host for Pipe<'_, R, W> {
    fn call(
        &mut self,
        name: String,
        args: Vec<MontyObject>,
        kwargs: Vec<(MontyObject, MontyObject)>,
    ) -> io::Result<Reply> {
        write_blocking(self.output, &FromWorker::Call { name, args, kwargs })?;
        match read_blocking(self.input)? {
            Some(ToWorker::Reply(r)) => Ok(r),
            _ => Err(io::Error::other("expected a reply")),
        }
    }

    fn started(&self) -> Instant {
        self.started
    }
}

/// Print output, kept up to the budget; the rest is dropped, not an error.
struct Printer {
    text: String,
    cap: usize,
    truncated: bool,
}

impl Printer {
    fn push(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        let room = self.cap.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&s[..cut]);
            self.truncated = true;
        }
    }
}

impl PrintWriterCallback for Printer {
    fn stdout_write(&mut self, output: Cow<'_, str>) -> Result<(), MontyException> {
        self.push(&output);
        Ok(())
    }

    fn stdout_push(&mut self, end: char) -> Result<(), MontyException> {
        let mut b = [0u8; 4];
        self.push(end.encode_utf8(&mut b));
        Ok(())
    }
}

fn error(kind: ExcType, message: impl Into<String>) -> MontyException {
    MontyException::new(kind, Some(message.into()))
}

fn run(
    program: &str,
    inputs: Vec<MontyObject>,
    budget: Budget,
    accounting: bool,
    host: &mut impl Host,
) -> FromWorker {
    let mut printer = Printer {
        text: String::new(),
        cap: budget.print,
        truncated: false,
    };
    let result = execute(program, inputs, budget, accounting, host, &mut printer);
    FromWorker::Done {
        result,
        print: printer.text,
        print_truncated: printer.truncated,
    }
}

fn execute(
    source: &str,
    inputs: Vec<MontyObject>,
    budget: Budget,
    accounting: bool,
    host: &mut impl Host,
    printer: &mut Printer,
) -> Result<MontyObject, MontyException> {
    let runner = compiled(source)?;
    // The budget is the run's: what parsing and compiling held is not counted.
    alloc::start_run(budget.memory);
    let limits = ResourceLimits {
        max_duration: Some(budget.cpu),
        max_memory: accounting.then_some(budget.memory),
        gc_interval: None,
        max_recursion_depth: budget.recursion,
        max_suspensions: budget.host_calls,
    };
    let mut progress = runner.start(
        inputs,
        ResourceTracker::new(limits),
        PrintWriter::Callback(printer),
    )?;
    let mut host_calls = 0usize;
    loop {
        progress = match progress {
            RunProgress::Complete(v) => return Ok(v),
            RunProgress::FunctionCall(call) => {
                let name = call.function_name.clone();
                if name == "_cs_local" {
                    let result = local(&call.args, host.started());
                    call.resume(result, PrintWriter::Callback(printer))?
                } else if HELPERS.contains(&name.as_str()) {
                    host_calls += 1;
                    if host_calls > budget.host_calls {
                        let e = error(
                            ExcType::RuntimeError,
                            format!("more than {} helper calls in one run", budget.host_calls),
                        );
                        call.abort(e, PrintWriter::Callback(printer))?
                    } else {
                        let reply = host
                            .call(name, call.args.clone(), call.kwargs.clone())
                            .map_err(|e| {
                                error(ExcType::RuntimeError, format!("the host went away: {e}"))
                            })?;
                        match reply {
                            Reply::Return(v) => call.resume(v, PrintWriter::Callback(printer))?,
                            Reply::Raise(e) => call.resume(
                                ExtFunctionResult::Error(e),
                                PrintWriter::Callback(printer),
                            )?,
                            Reply::Stop(e) => call.abort(e, PrintWriter::Callback(printer))?,
                        }
                    }
                } else {
                    call.resume(
                        ExtFunctionResult::NotFound(name),
                        PrintWriter::Callback(printer),
                    )?
                }
            }
            RunProgress::NameLookup(lookup) => {
                lookup.resume(None, PrintWriter::Callback(printer))?
            }
            RunProgress::OsCall(call) => {
                let what = format!("{:?}", call.function_call);
                let what = what
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("this call")
                    .to_string();
                call.abort(
                    error(
                        ExcType::PermissionError,
                        format!("{what} is not available in the sandbox (no file system, environment or network)"),
                    ),
                    PrintWriter::Callback(printer),
                )?
            }
            RunProgress::ResolveFutures(f) => f.abort(
                error(
                    ExcType::RuntimeError,
                    "async code is not supported in a code node",
                ),
                PrintWriter::Callback(printer),
            )?,
        };
    }
}

/// Programs compiled in this worker, by source: a node's code is parsed
/// and compiled once per worker, not once per run.
fn compiled(source: &str) -> Result<MontyRun, MontyException> {
    const KEPT: usize = 64;
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, MontyRun>> =
            Default::default();
    }
    if let Some(hit) = CACHE.with(|c| c.borrow().get(source).cloned()) {
        return Ok(hit);
    }
    let program =
        source::prepare(source).map_err(|e| error(ExcType::SyntaxError, e.to_string()))?;
    let runner =
        source::compile(&program).map_err(|e| error(ExcType::SyntaxError, e.to_string()))?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= KEPT {
            c.clear();
        }
        c.insert(source.to_string(), runner.clone());
    });
    Ok(runner)
}

/// Entropy and the clock, answered without a round trip to the server.
fn local(args: &[MontyObject], started: Instant) -> ExtFunctionResult {
    let mut rng = rand::rng();
    match args {
        [MontyObject::String(f)] if f == "random" => MontyObject::Float(rng.random::<f64>()).into(),
        [
            MontyObject::String(f),
            MontyObject::Int(a),
            MontyObject::Int(b),
        ] if f == "randint" => {
            if a > b {
                ExtFunctionResult::Error(error(
                    ExcType::ValueError,
                    format!("empty range in randint({a}, {b})"),
                ))
            } else {
                MontyObject::Int(rng.random_range(*a..=*b)).into()
            }
        }
        [MontyObject::String(f), ..] if f == "randint" => {
            ExtFunctionResult::Error(error(ExcType::TypeError, "randint() takes two integers"))
        }
        [MontyObject::String(f)] if f == "time" => MontyObject::Float(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64(),
        )
        .into(),
        [MontyObject::String(f)] if f == "monotonic" => {
            MontyObject::Float(started.elapsed().as_secs_f64()).into()
        }
        _ => ExtFunctionResult::NotFound("_cs_local".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::input_names;

    /// A host that answers every helper with its name's length, for the loop's tests.
    struct Echo;

    impl Host for Echo {
        fn call(
            &mut self,
            name: String,
            _: Vec<MontyObject>,
            _: Vec<(MontyObject, MontyObject)>,
        ) -> io::Result<Reply> {
            if name == "abort_with_message" {
                return Ok(Reply::Stop(error(ExcType::RuntimeError, "stopped")));
            }
            Ok(Reply::Return(MontyObject::Int(name.len() as i64)))
        }
        fn started(&self) -> Instant {
            Instant::now()
        }
    }

    fn budget() -> Budget {
        Budget {
            cpu: Duration::from_millis(500),
            memory: 16 << 20,
            recursion: 200,
            host_calls: 100,
            print: 64,
        }
    }

    fn inputs() -> Vec<MontyObject> {
        let mut v = vec![
            MontyObject::String("hi".into()),
            MontyObject::dict(vec![(
                MontyObject::String("node_inputs".into()),
                MontyObject::List(vec![]),
            )]),
        ];
        v.extend(
            input_names()
                .into_iter()
                .skip(2)
                .map(|name| MontyObject::Function {
                    name,
                    docstring: None,
                }),
        );
        v
    }

    fn go(code: &str) -> (Result<MontyObject, MontyException>, String) {
        match run(code, inputs(), budget(), false, &mut Echo) {
            FromWorker::Done { result, print, .. } => (result, print),
            _ => unreachable!(),
        }
    }

    #[test]
    fn main_gets_its_input_and_the_result_is_text() {
        let (r, _) = go("def main(input, **kwargs):\n    return [input, kwargs['node_inputs']]\n");
        assert_eq!(r.unwrap(), MontyObject::String("['hi', []]".into()));
    }

    #[test]
    fn helpers_reach_the_host_and_stop_is_uncatchable() {
        let (r, _) = go(
            "def main(input, **kwargs):\n    return get_node_output('x') + len(random.choice(['ab']))\n",
        );
        assert_eq!(r.unwrap(), MontyObject::String("17".into()));
        let (r, _) = go(
            "def main(input, **kwargs):\n    try:\n        abort_with_message('bye')\n    except Exception:\n        return 'caught'\n    return 'after'\n",
        );
        assert_eq!(r.unwrap_err().message(), Some("stopped"));
    }

    #[test]
    fn print_is_kept_up_to_its_budget() {
        let (r, print) = go(
            "def main(input, **kwargs):\n    for i in range(100):\n        print('line', i)\n    return 1\n",
        );
        assert!(r.is_ok());
        assert_eq!(print.len(), 64);
        assert!(print.starts_with("line 0\nline 1\n"));
    }

    #[test]
    fn the_host_is_out_of_reach() {
        for code in [
            "def main(input, **kwargs):\n    return open('/etc/passwd').read()\n",
            "import os\ndef main(input, **kwargs):\n    return 1\n",
            "def main(input, **kwargs):\n    return __import__('os')\n",
            "def main(input, **kwargs):\n    return ().__class__.__bases__[0].__subclasses__()\n",
            "def main(input, **kwargs):\n    return globals()['__builtins__']\n",
            "def main(input, **kwargs):\n    return eval('1')\n",
            "def main(input, **kwargs):\n    return exec('import os')\n",
        ] {
            let (r, _) = go(code);
            assert!(r.is_err(), "{code} ran: {r:?}");
        }
    }

    #[test]
    fn limits_end_the_run() {
        let (r, _) = go("def main(input, **kwargs):\n    while True:\n        pass\n");
        assert_eq!(r.unwrap_err().exc_type(), ExcType::TimeoutError);
        let (r, _) = go(
            "def main(input, **kwargs):\n    def f(n):\n        return f(n + 1)\n    return f(0)\n",
        );
        assert_eq!(r.unwrap_err().exc_type(), ExcType::RecursionError);
        let (r, _) = go(
            "def main(input, **kwargs):\n    for i in range(1000):\n        get_node_output('x')\n    return 1\n",
        );
        assert!(
            r.unwrap_err()
                .message()
                .unwrap_or_default()
                .contains("helper calls")
        );
    }
}
