//! `galley unlock APP [--host DEST]`: removes a deploy lock, through the same primitives a
//! recipe uses (so an ssh host gets the same connection, quoting and reports as a deploy).

use std::io::Write;

use super::{RunArgs, UnlockArgs, EXIT_USAGE};
use crate::error::Code;
use crate::exec::Masker;
use crate::report::Report;

/// The recipe that unlocks: `params` carries the arguments, so nothing is pasted into code.
const RECIPE: &str = r#"
let opts = #{};
for key in ["identity", "known_hosts_file", "state_dir"] {
    if key in params { opts[key] = params[key]; }
}
let h = if "host" in params { ssh::connect(params.host, opts) } else { local() };
let holder = deploy::unlock(h, params.app);
if holder == () {
    log(`${params.app} is not locked on ${h.name}`);
} else {
    log(`removed the lock of ${params.app} on ${h.name}, held by:` + "\n" + holder);
}
"#;

pub fn unlock(args: UnlockArgs) -> i32 {
    let mut file = match tempfile::Builder::new()
        .prefix("galley-unlock-")
        .suffix(".rhai")
        .tempfile()
    {
        Ok(f) => f,
        Err(e) => {
            super::print_report(
                &Report::plain(Code::Io, format!("cannot write a temp file: {e}"), ""),
                args.output.mode(),
                &Masker::default(),
            );
            return EXIT_USAGE;
        }
    };
    if let Err(e) = file.write_all(RECIPE.as_bytes()) {
        super::print_report(
            &Report::plain(Code::Io, format!("cannot write a temp file: {e}"), ""),
            args.output.mode(),
            &Masker::default(),
        );
        return EXIT_USAGE;
    }
    let mut set = vec![format!("app={}", args.app)];
    let given = [
        ("host", &args.host),
        ("identity", &args.identity),
        ("known_hosts_file", &args.known_hosts_file),
        ("state_dir", &args.state_dir),
    ];
    set.extend(
        given
            .iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={v}"))),
    );
    super::run::run(RunArgs {
        file: file.path().to_path_buf(),
        task: None,
        set,
        dry_run: false,
        secrets: None,
        max_operations: crate::engine::DEFAULT_MAX_OPERATIONS,
        max_parallel: 1,
        force_unlock: false,
        diff: false,
        notify: Vec::new(),
        locked: super::LockedArg { locked: false },
        output: args.output,
    })
}
