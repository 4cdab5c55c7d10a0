//! A mutation fuzzer over `galley check` and `galley run --dry-run`: recipes (the crash inputs
//! found so far among them) are cut, duplicated and spliced with hostile fragments under a fixed
//! seed, and no mutant may crash Galley (exit 101 from the panic hook, 134 from an abort, or a
//! signal). The count is bounded so the test stays well under a minute.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::Sandbox;

/// How many mutants each run tries.
const MUTANTS: usize = 300;
/// A mutant still running after this long is stopped and counted as hanging.
const PER_RUN: Duration = Duration::from_secs(5);

/// Recipes to mutate: ordinary ones, and every input that once crashed Galley.
const SEEDS: &[&str] = &[
    "let h = local();\nh.run([\"echo\", \"hi\"], #{ timeout: \"5s\" });\nlog(`done ${1 + 2}`);\n",
    "fn deploy(n) {\n  if n > 2 { throw \"big\"; }\n  let m = #{ a: n, b: [1, 2, 3] };\n  m.a\n}\nstep(\"one\", || deploy(1));\n",
    "import \"galley/in_place\" as ip;\nlet d = local().docker();\nlet n = local().nginx(#{ conf_dir: \"/nonexistent\" });\n",
    "let g = local().git(\".\");\nlet s = local().process(\"svc\", #{ cmd: [\"true\"] });\nsleep(\"10ms\");\n",
    // The crash inputs.
    "sleep(1e30);\n",
    "sleep(\"999999999999999999999s\");\n",
    "local().run([\"true\"], #{ timeout: 1e30 });\n",
    "ssh::connect(\"root@127.0.0.1:1\", #{ connect_timeout: 1.8e19 });\n",
    "local().process(\"svc\", #{ cmd: [\"true\"] }).stop(#{ timeout: 9223372036854775807 });\n",
    "let m = \"x\"; import m as q;\n",
    "import \"main\" as me;\n",
    "import \"other\" as o;\n",
    "let s = \"x\"; loop { s += s; }\n",
];

/// Fragments spliced into the seeds.
const FRAGMENTS: &[&str] = &[
    "import \"main\" as z;",
    "import x as y;",
    "1e30",
    "-1",
    "9223372036854775807",
    "\"999999999999999999999s\"",
    "#{ timeout: 1e308 }",
    "#{",
    "}",
    "(",
    ")",
    "[",
    "`${",
    "\"",
    "'",
    "/*",
    "\\",
    "\u{0}",
    "\u{1b}[2J",
    "loop { }",
    "fn f() { f() } f();",
    "let s = \"ab\"; s += s; s += s;",
    "0.0/0.0",
    "sleep(",
    "::",
    "\n",
    ";",
];

/// xorshift64*: a fixed sequence for a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A char boundary of `text` at or before `at`.
fn boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One to three mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text = seed.to_string();
    for _ in 0..=rng.below(3) {
        let a = boundary(&text, rng.below(text.len() + 1));
        let b = boundary(&text, a + rng.below(12));
        text = match rng.below(4) {
            0 => format!("{}{}", &text[..a], &text[b..]),
            1 => format!("{}{}{}", &text[..b], &text[a..b], &text[b..]),
            2 => format!(
                "{}{}{}",
                &text[..a],
                FRAGMENTS[rng.below(FRAGMENTS.len())],
                &text[a..]
            ),
            _ => format!("{}{}", text, SEEDS[rng.below(SEEDS.len())]),
        };
    }
    text
}

/// Runs galley with `args` in `sb`; the exit code, or None when a signal ended it or it hung.
fn outcome(sb: &Sandbox, args: &[&str]) -> Result<i32, String> {
    let mut child: std::process::Child = sb
        .galley()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn galley");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status
                .code()
                .ok_or_else(|| format!("killed by a signal: {status}"));
        }
        if started.elapsed() > PER_RUN {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {PER_RUN:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn mutated_recipes_never_crash_check_or_a_dry_run() {
    let sb = Sandbox::new();
    sb.write("other.rhai", "import \"main\" as m;\nfn o() { 1 }\n");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut crashes = Vec::new();
    for i in 0..MUTANTS {
        let seed = SEEDS[i % SEEDS.len()];
        let mutant = mutate(&mut rng, seed);
        sb.write("main.rhai", &mutant);
        for args in [
            &["check", "main.rhai"][..],
            &[
                "run",
                "main.rhai",
                "--dry-run",
                "--max-operations",
                "200000",
            ][..],
        ] {
            match outcome(&sb, args) {
                Ok(0..=2 | 130) => {}
                Ok(code) => crashes.push(format!("{args:?} exited {code} on:\n{mutant:?}")),
                // A mutant may well ask for a long sleep (`sleep(1e30)` minus its `e`).
                Err(why) if why.starts_with("still running") && mutant.contains("sleep") => {}
                Err(why) => crashes.push(format!("{args:?} {why} on:\n{mutant:?}")),
            }
        }
    }
    assert!(crashes.is_empty(), "{}", crashes.join("\n\n"));
}
