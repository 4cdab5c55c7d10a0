//! ssh hosts against real sshd servers on loopback.

use crate::support::sshd::Fleet;
use crate::support::Sandbox;

/// A galley command that keeps its control sockets in the fleet's folder.
fn run(sb: &Sandbox, fleet: &Fleet, recipe: &str) -> crate::support::Run {
    sb.write("recipe.rhai", recipe);
    let out = sb
        .galley()
        .env("GALLEY_CONTROL_DIR", fleet.control_dir())
        .args(["run", "recipe.rhai"])
        .output()
        .expect("galley runs");
    crate::support::Run::from(out)
}

#[test]
fn runs_commands_and_files_over_ssh() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let root = fleet.hosts[0].root.display().to_string();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
let out = h.run(["printf", "%s|", "a b", "$(echo no)", "it's", ";", "*", "x\ny"]);
print("got=" + out.stdout);
h.mkdir("{root}/a/b");
h.write("{root}/a/b/f.txt", "hello");
print("read=" + h.read("{root}/a/b/f.txt"));
print("exists=" + h.exists("{root}/a/b/f.txt") + "," + h.exists("{root}/nope"));
h.symlink("{root}/a/b/f.txt", "{root}/link");
print("link=" + h.read("{root}/link"));
h.remove("{root}/link");
print("gone=" + h.exists("{root}/link"));
let r = h.run("echo $PWD", #{{ dir: "{root}/a" }});
print("pwd=" + r.stdout);
"#,
        dest = fleet.dest(0),
        opts = fleet.options()
    );
    let r = run(&sb, &fleet, &recipe);
    println!("{}\n{}", r.stdout, r.stderr);
    let r = r.expect_code(0);
    assert!(
        r.stdout.contains("got=a b|$(echo no)|it's|;|*|x\ny|"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("read=hello"));
    assert!(r.stdout.contains("exists=true,false"));
    assert!(r.stdout.contains("link=hello"));
    assert!(r.stdout.contains("gone=false"));
}
