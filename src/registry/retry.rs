//! Transient failures: which answers and network errors are worth another try, how long
//! to wait before it, and a blob reader that resumes a download cut in the middle with a
//! `Range` request instead of starting over. Registries behind load balancers and CDNs
//! answer 429 and 503 under load and drop long transfers; a backup of gigabytes must not
//! fail on one of them. Content errors (a digest mismatch) are never retried.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

/// How many times a request is sent at most (the first try and the retries).
pub const ATTEMPTS: u32 = 4;

/// How many times one blob download is resumed at most.
pub const RESUMES: u32 = 5;

/// The longest wait a `Retry-After` header is granted.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Marks an error as transient: the same request may succeed when sent again. It is
/// carried inside `anyhow::Error` chains and found with [`is_transient`].
#[derive(Debug)]
pub struct Transient(pub String);

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Transient {}

/// True when `e`, or an error it wraps, is [`Transient`].
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Transient>())
}

/// Statuses that say "not now" rather than "no": rate limits, gateways, overloads.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Network errors worth another try: a connection dropped or timed out once it was made.
/// A refused connection or an unknown host is an answer (wrong address, server down),
/// given at once, so it is not retried.
pub fn is_transient_transport(t: &ureq::Transport) -> bool {
    matches!(
        t.kind(),
        ureq::ErrorKind::Io | ureq::ErrorKind::ProxyConnect
    )
}

/// Read errors of a response body worth resuming: the connection closed or timed out.
pub fn is_transient_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
    )
}

/// The wait before retry number `retry` (1-based): 0.5 s, 1 s, 2 s, ..., or what the
/// server's `Retry-After` (in seconds) asks, up to 30 s.
pub fn delay(retry: u32, retry_after: Option<&str>) -> Duration {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        return Duration::from_secs(secs).min(MAX_RETRY_AFTER);
    }
    Duration::from_millis(500u64 << retry.saturating_sub(1).min(6))
}

/// What one try of an operation gave, for [`retrying`].
pub enum Try<T> {
    /// The outcome, success or a failure not worth another try.
    Done(T),
    /// A transient failure: try again, after `retry_after` (a `Retry-After` value) if the
    /// server gave one; `outcome` is what the operation gives when no try is left.
    Again {
        outcome: T,
        retry_after: Option<String>,
    },
}

/// Runs `attempt` until it is done or has been tried [`ATTEMPTS`] times, waiting
/// [`delay`] between tries. The one loop behind every retried request.
pub fn retrying<T>(mut attempt: impl FnMut() -> Try<T>) -> T {
    let mut tried = 1;
    loop {
        match attempt() {
            Try::Done(outcome) => return outcome,
            Try::Again { outcome, .. } if tried >= ATTEMPTS => return outcome,
            Try::Again { retry_after, .. } => {
                std::thread::sleep(delay(tried, retry_after.as_deref()));
                tried += 1;
            }
        }
    }
}

/// [`Try::Again`] for a transient error, [`Try::Done`] for any other outcome.
pub fn again_if_transient<T>(outcome: anyhow::Result<T>) -> Try<anyhow::Result<T>> {
    match outcome {
        Err(e) if is_transient(&e) => Try::Again {
            outcome: Err(e),
            retry_after: None,
        },
        outcome => Try::Done(outcome),
    }
}

/// Opens the rest of a download: a response body starting at the given byte offset.
pub type Reopen<'a> =
    dyn Fn(u64) -> anyhow::Result<Box<dyn Read + Send + Sync + 'a>> + Send + Sync + 'a;

/// A response body that, when the connection fails in the middle, asks for the rest
/// (`reopen` from the offset reached) and goes on, so the reader above it sees one
/// unbroken stream. It gives up after [`RESUMES`] resumes, with the last error.
pub struct ResumingReader<'a> {
    inner: Box<dyn Read + Send + Sync + 'a>,
    reopen: Box<Reopen<'a>>,
    offset: u64,
    resumes: u32,
    what: String,
    pause: fn(u32, Option<&str>) -> Duration,
}

impl<'a> ResumingReader<'a> {
    pub fn new(
        inner: Box<dyn Read + Send + Sync + 'a>,
        what: String,
        reopen: Box<Reopen<'a>>,
    ) -> Self {
        ResumingReader {
            inner,
            reopen,
            offset: 0,
            resumes: 0,
            what,
            pause: delay,
        }
    }
}

impl Read for ResumingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if is_transient_io(&e) && self.resumes < RESUMES => {
                    self.resumes += 1;
                    std::thread::sleep((self.pause)(self.resumes, None));
                    match (self.reopen)(self.offset) {
                        Ok(r) => self.inner = r,
                        // Resuming failed for good: report it, with the first cause.
                        Err(again) => {
                            return Err(io::Error::new(
                                e.kind(),
                                format!(
                                    "{}: {e}; resuming at byte {}: {again:#}",
                                    self.what, self.offset
                                ),
                            ))
                        }
                    }
                }
                Err(e) if is_transient_io(&e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e} (at byte {}, after {} resumes)",
                            self.what, self.offset, self.resumes
                        ),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Yields `data[from..]` but fails with `kind` after `cut` bytes.
    struct Cut {
        data: Vec<u8>,
        pos: usize,
        cut: usize,
        kind: io::ErrorKind,
    }

    impl Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos >= self.cut {
                return Err(io::Error::new(self.kind, "cut"));
            }
            let n = buf
                .len()
                .min(self.cut - self.pos)
                .min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn cut_at(
        data: &[u8],
        from: usize,
        cut: usize,
        kind: io::ErrorKind,
    ) -> Box<dyn Read + Send + Sync> {
        Box::new(Cut {
            data: data.to_vec(),
            pos: from,
            cut,
            kind,
        })
    }

    #[test]
    fn a_body_cut_twice_is_resumed_from_the_offset_reached_and_reads_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let offsets = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, o) = (data.clone(), offsets.clone());
        let reopen = move |from: u64| -> anyhow::Result<Box<dyn Read + Send + Sync>> {
            o.lock().unwrap().push(from);
            // The second piece is cut again at 7000; the third runs to the end.
            let cut = if from < 7000 { 7000 } else { d.len() + 1 };
            Ok(cut_at(
                &d,
                from as usize,
                cut.min(d.len() + 1),
                io::ErrorKind::UnexpectedEof,
            ))
        };
        let first = cut_at(&data, 0, 3000, io::ErrorKind::ConnectionReset);
        let mut r = ResumingReader::new(first, "blob x".into(), Box::new(reopen));
        r.pause = |_, _| Duration::ZERO;
        let mut out = Vec::new();
        // `Cut` at the very end of data returns Ok(0) once pos == len.
        let mut buf = [0u8; 999];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(*offsets.lock().unwrap(), vec![3000, 7000]);
    }

    #[test]
    fn a_body_that_keeps_failing_gives_up_after_the_resume_limit() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let reopen = move |from: u64| -> anyhow::Result<Box<dyn Read + Send + Sync>> {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(cut_at(
                &[0u8; 100],
                from as usize,
                from as usize,
                io::ErrorKind::ConnectionReset,
            ))
        };
        let first = cut_at(&[0u8; 100], 0, 10, io::ErrorKind::ConnectionReset);
        let mut r = ResumingReader::new(first, "blob y".into(), Box::new(reopen));
        r.pause = |_, _| Duration::ZERO;
        let mut sink = Vec::new();
        let e = r.read_to_end(&mut sink).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), RESUMES);
        assert!(e.to_string().contains("blob y"), "{e}");
        assert!(e.to_string().contains("after 5 resumes"), "{e}");
    }

    #[test]
    fn content_errors_are_not_resumed() {
        let reopen = |_: u64| -> anyhow::Result<Box<dyn Read + Send + Sync>> {
            panic!("must not reopen on a content error")
        };
        let first = cut_at(&[0u8; 100], 0, 10, io::ErrorKind::InvalidData);
        let mut r = ResumingReader::new(first, "blob z".into(), Box::new(reopen));
        let mut sink = Vec::new();
        assert_eq!(
            r.read_to_end(&mut sink).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn delays_grow_and_retry_after_is_honoured_up_to_a_limit() {
        assert_eq!(delay(1, None), Duration::from_millis(500));
        assert_eq!(delay(3, None), Duration::from_secs(2));
        assert_eq!(delay(1, Some("3")), Duration::from_secs(3));
        assert_eq!(delay(1, Some("86400")), MAX_RETRY_AFTER);
        // An HTTP date is not parsed: the ordinary backoff applies.
        assert_eq!(
            delay(2, Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            Duration::from_secs(1)
        );
    }
}
