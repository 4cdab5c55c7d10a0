//! `galley disconnect`: close the SSH master connections that runs kept open for reuse.

use std::os::unix::fs::FileTypeExt;

use super::{print_report, EXIT_FAILED, EXIT_OK};
use crate::exec::{Masker, OutputMode};
use crate::primitives::ssh::master::{control, control_dir};
use crate::report::Report;

pub fn disconnect() -> i32 {
    let dir = match control_dir() {
        Ok(dir) => dir,
        Err(f) => {
            print_report(&Report::failure(&f), OutputMode::Plain, &Masker::default());
            return EXIT_FAILED;
        }
    };
    let sockets: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    let mut closed = 0;
    for socket in &sockets {
        if control(socket, &["-O", "exit"]) {
            closed += 1;
        } else {
            // Nothing answers on it: a master that died and left its socket.
            let _ = std::fs::remove_file(socket);
        }
    }
    println!(
        "closed {closed} ssh connection{} in {}",
        if closed == 1 { "" } else { "s" },
        dir.display()
    );
    EXIT_OK
}
