//! Reading a command's output pipes, on any host: the bytes are kept exactly (up to a bound) for
//! the result, and shown line by line as they arrive.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use super::{Printer, Stream};

/// At most this much of each stream is kept in a command's result (its first bytes); the rest is
/// still shown, and the result says it was cut (`truncated`).
pub const KEEP_LIMIT: usize = 16 * 1024 * 1024;
/// A line longer than this is shown in pieces of this size, so that showing it stays bounded too.
const SHOW_LIMIT: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// What was read from one stream.
#[derive(Debug, Default)]
pub struct Captured {
    /// The first `KEEP_LIMIT` bytes, exactly as written.
    pub bytes: Vec<u8>,
    /// Whether more than `KEEP_LIMIT` bytes were written.
    pub truncated: bool,
}

impl Captured {
    /// The text, and the exact bytes when they are not valid UTF-8 (the text is then lossy).
    pub fn into_text(self) -> (String, Option<Vec<u8>>) {
        match String::from_utf8(self.bytes) {
            Ok(text) => (text, None),
            Err(e) => {
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                (text, Some(e.into_bytes()))
            }
        }
    }
}

/// What the reader has so far: the kept bytes and the line not yet shown.
struct State {
    captured: Captured,
    pending: Vec<u8>,
    show: Option<(Printer, String, Stream)>,
}

impl State {
    fn push(&mut self, bytes: &[u8]) {
        let room = KEEP_LIMIT - self.captured.bytes.len();
        self.captured
            .bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.captured.truncated |= bytes.len() > room;
        if self.show.is_none() {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let line = self.pending[start..start + end].to_vec();
            self.show_line(&line);
            start += end + 1;
        }
        self.pending.drain(..start);
        while self.pending.len() >= SHOW_LIMIT {
            let piece: Vec<u8> = self.pending.drain(..SHOW_LIMIT).collect();
            self.show_line(&piece);
        }
    }

    fn show_line(&self, line: &[u8]) {
        if let Some((printer, host, stream)) = &self.show {
            // A terminal would let `\r` overwrite the host prefix: it is kept in the result only.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            printer.line(host, *stream, &String::from_utf8_lossy(line));
        }
    }

    /// Shows a final line that has no newline, and hands over what was kept.
    fn finish(&mut self) -> Captured {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.show_line(&line);
        }
        std::mem::take(&mut self.captured)
    }
}

/// A task reading one pipe to its end; what it read is never lost, even when it is stopped early.
pub struct Reader {
    state: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts reading `pipe`, showing its lines under `host` unless `quiet`.
    pub fn spawn<R: AsyncRead + Unpin + Send + 'static>(
        pipe: Option<R>,
        host: String,
        stream: Stream,
        printer: Printer,
        quiet: bool,
    ) -> Reader {
        let state = Arc::new(Mutex::new(State {
            captured: Captured::default(),
            pending: Vec::new(),
            show: (!quiet).then_some((printer, host, stream)),
        }));
        let task = pipe.map(|mut pipe| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; CHUNK];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    state.lock().expect("reader lock").push(&buf[..n]);
                }
            })
        });
        Reader { state, task }
    }

    /// Waits until the pipe reaches its end (every writer closed it). Cancel-safe.
    pub async fn eof(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }

    /// Everything read, waiting at most `grace` for the end of the pipe: a detached grandchild
    /// may keep it open long after the command itself exited. What was read is kept either way.
    pub async fn finish(mut self, grace: Duration) -> Captured {
        let _ = tokio::time::timeout(grace, self.eof()).await;
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.state.lock().expect("reader lock").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_bytes_and_says_when_they_were_cut() {
        let mut state = State {
            captured: Captured::default(),
            pending: Vec::new(),
            show: None,
        };
        state.push(b"a\r\n\xffb");
        let (text, bytes) = state.finish().into_text();
        assert_eq!(text, "a\r\n\u{fffd}b");
        assert_eq!(bytes.as_deref(), Some(&b"a\r\n\xffb"[..]));
        let mut state = State {
            captured: Captured::default(),
            pending: Vec::new(),
            show: None,
        };
        state.push(&vec![b'x'; KEEP_LIMIT - 1]);
        state.push(b"yz");
        let captured = state.finish();
        assert!(captured.truncated);
        assert_eq!(captured.bytes.len(), KEEP_LIMIT);
        assert_eq!(captured.bytes.last(), Some(&b'y'));
    }
}
