//! `galley docs [FILTER]`: the recipe API, read from the engine itself.

use super::EXIT_OK;
use crate::engine::Galley;
use crate::exec::OutputMode;
use crate::report::tidy_signature;

pub fn docs(filter: Option<&str>) -> i32 {
    let (ctx, _runtime) = super::inspecting(OutputMode::Plain);
    let galley = Galley::inspecting(&ctx);
    let mut signatures: Vec<String> = galley
        .engine
        .gen_fn_signatures(false)
        .iter()
        .map(|s| tidy_signature(s))
        .map(|s| match s.strip_prefix("get$") {
            // Property getters: `get$name(Host)` is read as `host.name`.
            Some(getter) => {
                let (name, on) = getter.split_once('(').unwrap_or((getter, ""));
                format!("{}.{name}  (property)", on.trim_end_matches(')'))
            }
            None => s,
        })
        .filter(|s| filter.is_none_or(|f| s.split('(').next().unwrap_or_default().contains(f)))
        .collect();
    signatures.sort();
    signatures.dedup();
    for signature in signatures {
        println!("{signature}");
    }
    EXIT_OK
}
