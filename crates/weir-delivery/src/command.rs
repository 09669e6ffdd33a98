//! A transform that is a program: weir's stand-in for the transformation Lambda.
//!
//! Each invocation runs the program once with Firehose's transformation event on stdin and reads
//! Firehose's response from stdout — the same JSON a Lambda receives and returns, so a Lambda handler
//! runs behind a few lines of shim (read stdin, call the handler, print the result). The response goes
//! through the same contract checks as any transform: every record id exactly once, at most 6 MB.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weir_core::transform::envelope::{self, Invocation};
use weir_core::transform::{InputRecord, MAX_RESPONSE_BYTES, OutputRecord, ProcessingError, Transform, code};

pub struct CommandTransform {
    argv: Vec<String>,
    timeout: Duration,
    delivery_arn: String,
    stream_arn: String,
}

impl CommandTransform {
    pub fn new(argv: Vec<String>, timeout: Duration, delivery: &str, stream: &str) -> CommandTransform {
        CommandTransform {
            argv,
            timeout,
            delivery_arn: format!("arn:aws:firehose:local:000000000000:deliverystream/{delivery}"),
            stream_arn: format!("arn:aws:kinesis:local:000000000000:stream/{stream}"),
        }
    }

    /// Runs the program once; its stdout, or why it failed (a Lambda function error).
    fn run(&self, event: &[u8]) -> Result<Vec<u8>, ProcessingError> {
        let fail = |message: String| ProcessingError::new(code::LAMBDA_FUNCTION_ERROR, message);
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("starting {:?}: {e}", self.argv[0])))?;
        // Feed stdin and drain stdout/stderr on threads, so a program that writes before it has read
        // everything cannot deadlock against us.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let event = event.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&event));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            // One byte over the limit is enough to know the response is too large.
            let limit = MAX_RESPONSE_BYTES as u64 + 1;
            stdout.by_ref().take(limit).read_to_end(&mut out).map(|_| out)
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let errors = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stderr.by_ref().take(64 * 1024).read_to_end(&mut out);
            out
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timed out after {:?}", self.timeout)));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(fail(format!("waiting for the program: {e}"))),
            }
        };
        let _ = writer.join();
        let stdout = reader
            .join()
            .map_err(|_| fail("reading stdout panicked".into()))?
            .map_err(|e| fail(format!("reading stdout: {e}")))?;
        let stderr = errors.join().unwrap_or_default();
        if !status.success() {
            let tail = String::from_utf8_lossy(&stderr);
            let tail = tail.trim();
            return Err(fail(format!(
                "the program exited with {status}: {}",
                last_chars(tail, 500)
            )));
        }
        if stdout.len() > MAX_RESPONSE_BYTES {
            return Err(ProcessingError::new(
                code::LAMBDA_FUNCTION_ERROR,
                format!("the response is over Lambda's limit of {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
        Ok(stdout)
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let start = s.char_indices().rev().nth(n).map_or(0, |(i, _)| i);
    &s[start..]
}

impl Transform for CommandTransform {
    fn id(&self) -> &str {
        &self.argv[0]
    }

    fn process<'a>(&self, batch: &'a [InputRecord<'_>]) -> Result<Vec<OutputRecord<'a>>, ProcessingError> {
        let invocation = Invocation {
            invocation_id: Cow::Owned(uuid::Uuid::new_v4().to_string()),
            delivery_stream_arn: Cow::Borrowed(&self.delivery_arn),
            source_kinesis_stream_arn: Some(Cow::Borrowed(&self.stream_arn)),
            region: Cow::Borrowed("local"),
            records: batch.to_vec(),
        };
        let response = self.run(&envelope::encode_event(&invocation))?;
        let records = envelope::decode_response(&response).map_err(|e| {
            ProcessingError::new(
                code::LAMBDA_JSON_PROCESSING_EXCEPTION,
                format!("the response is not Firehose's: {e}"),
            )
        })?;
        Ok(records
            .into_iter()
            .map(|r| OutputRecord {
                record_id: Cow::Owned(r.record_id.into_owned()),
                result: r.result,
                data: Cow::Owned(r.data.into_owned()),
                partition_keys: r.partition_keys,
                error: r.error,
            })
            .collect())
    }
}
