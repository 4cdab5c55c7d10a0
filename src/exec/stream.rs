//! Reading a command's output pipes line by line, on any host.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Printer, Stream};

/// Reads `pipe` line by line, printing each line under `host` (unless quiet) and returning all of it.
pub async fn collect_lines<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    host: String,
    stream: Stream,
    printer: Printer,
    quiet: bool,
) -> String {
    let Some(pipe) = pipe else {
        return String::new();
    };
    let mut lines = BufReader::new(pipe).split(b'\n');
    let mut all = String::new();
    while let Ok(Some(bytes)) = lines.next_segment().await {
        let line = String::from_utf8_lossy(&bytes);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if !quiet {
            printer.line(&host, stream, line);
        }
        all.push_str(line);
        all.push('\n');
    }
    all
}

/// The output a reader task collected, waiting at most `grace` for it: a detached grandchild
/// may keep the pipe open long after the command itself exited.
pub async fn drain(task: tokio::task::JoinHandle<String>, grace: std::time::Duration) -> String {
    tokio::time::timeout(grace, task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}
