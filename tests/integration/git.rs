//! `h.git(dir)`: clone, fetch, switch, pull and queries against a real bare origin.

use std::path::Path;

use crate::support::{flat, sh, value_of, GitOrigin, Sandbox};

/// A recipe with `g` bound to the repo at `dir`, then `body`.
fn recipe(dir: &str, body: &str) -> String {
    format!("let g = local().git({dir:?});\n{body}\n")
}

/// Clones `origin` into `dir` with galley.
fn clone(sb: &Sandbox, origin: &GitOrigin, dir: &str) {
    let body = format!("g.clone({:?});", origin.url());
    sb.run_recipe(&recipe(dir, &body), &[]).expect_code(0);
}

#[test]
fn clone_with_a_branch_and_the_queries() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("README", "main\n")]);
    sh(&origin.work, &["git", "switch", "-q", "-c", "release/1.2"]);
    let release_sha = origin.commit(&[("VERSION", "1.2\n")], "release 1.2");
    sh(
        &origin.work,
        &["git", "push", "-q", "-u", "origin", "release/1.2"],
    );

    let dir = sb.join("app");
    let body = format!(
        r#"g.clone({:?}, #{{ branch: "release/1.2" }});
        log(`sha=${{g.sha()}}`);
        log(`short=${{g.short_sha()}}`);
        log(`branch=${{g.branch()}}`);
        log(`clean=${{g.is_clean()}}`);
        log(`dir=${{g.dir}}`);"#,
        origin.url()
    );
    let run = sb.run_recipe(&recipe(&dir, &body), &[]).expect_code(0);
    assert!(
        run.stdout
            .contains("[local] $ run git clone --branch release/1.2"),
        "{}",
        run.stdout
    );
    assert_eq!(value_of(&run.stdout, "sha"), release_sha);
    let short = value_of(&run.stdout, "short");
    assert!(
        short.len() >= 7 && short.len() < 40 && release_sha.starts_with(&short),
        "short_sha {short:?}"
    );
    assert_eq!(value_of(&run.stdout, "branch"), "release/1.2");
    assert_eq!(value_of(&run.stdout, "clean"), "true");
    assert_eq!(value_of(&run.stdout, "dir"), dir);
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/VERSION")).unwrap(),
        "1.2\n"
    );
    assert_eq!(
        sh(Path::new(&dir), &["git", "rev-parse", "HEAD"]),
        release_sha
    );

    // An untracked file makes the working copy dirty.
    sb.write("app/untracked.txt", "x");
    let run = sb
        .run_recipe(&recipe(&dir, "log(`clean=${g.is_clean()}`);"), &[])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "clean"), "false");
    // So does a modified tracked file.
    std::fs::remove_file(format!("{dir}/untracked.txt")).unwrap();
    sb.write("app/README", "changed\n");
    let run = sb
        .run_recipe(&recipe(&dir, "log(`clean=${g.is_clean()}`);"), &[])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "clean"), "false");
}

#[test]
fn clone_without_a_branch_takes_the_default_branch() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "trunk", &[("README", "hi\n")]);
    let dir = sb.join("app");
    clone(&sb, &origin, &dir);
    let run = sb
        .run_recipe(&recipe(&dir, "log(`branch=${g.branch()}`);"), &[])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "branch"), "trunk");
}

#[test]
fn pull_fast_forwards_and_changed_lists_exactly_the_changed_paths() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(
        sb.path(),
        "main",
        &[
            ("keep.txt", "same\n"),
            ("edit.txt", "v1\n"),
            ("gone.txt", "bye\n"),
        ],
    );
    let dir = sb.join("app");
    clone(&sb, &origin, &dir);
    let before = sh(Path::new(&dir), &["git", "rev-parse", "HEAD"]);

    std::fs::remove_file(origin.work.join("gone.txt")).unwrap();
    let after = origin.push(&[("edit.txt", "v2\n"), ("sub/new.txt", "new\n")], "second");

    let body = r"
        let from = g.sha();
        g.pull();
        let to = g.sha();
        log(`from=${from}`);
        log(`to=${to}`);
        let changed = g.changed(from, to);
        changed.sort();
        log(`changed=${changed}`);
        log(`none=${g.changed(to, to).len()}`);
    ";
    let run = sb.run_recipe(&recipe(&dir, body), &[]).expect_code(0);
    assert!(run.stdout.contains("$ run git -C"), "{}", run.stdout);
    assert!(run.stdout.contains("pull --ff-only"), "{}", run.stdout);
    assert_eq!(value_of(&run.stdout, "from"), before);
    assert_eq!(value_of(&run.stdout, "to"), after);
    assert_eq!(
        value_of(&run.stdout, "changed"),
        r#"["edit.txt", "gone.txt", "sub/new.txt"]"#
    );
    assert_eq!(value_of(&run.stdout, "none"), "0");
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/edit.txt")).unwrap(),
        "v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/sub/new.txt")).unwrap(),
        "new\n"
    );
    assert!(!Path::new(&format!("{dir}/gone.txt")).exists());

    // Nothing new: pulling again is fine and changes nothing.
    let run = sb
        .run_recipe(&recipe(&dir, "g.pull(); log(`sha=${g.sha()}`);"), &[])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "sha"), after);
}

#[test]
fn fetch_switch_and_require_branch_with_globs() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("README", "main\n")]);
    let dir = sb.join("app");
    clone(&sb, &origin, &dir);

    // A branch that appears on the origin after the clone.
    sh(&origin.work, &["git", "switch", "-q", "-c", "release/2.0"]);
    let release_sha = origin.commit(&[("VERSION", "2.0\n")], "release 2.0");
    sh(
        &origin.work,
        &["git", "push", "-q", "-u", "origin", "release/2.0"],
    );

    let body = r#"
        log(`before=${g.branch()}`);
        log(`main_ok=${g.require_branch(["main", "release/*"])}`);
        g.fetch();
        g.switch_to("release/2.0");
        log(`after=${g.branch()}`);
        log(`sha=${g.sha()}`);
        log(`glob_ok=${g.require_branch(["main", "release/*"])}`);
        log(`single_ok=${g.require_branch("release/2.*")}`);
    "#;
    let run = sb.run_recipe(&recipe(&dir, body), &[]).expect_code(0);
    assert!(run.stdout.contains("fetch --prune"), "{}", run.stdout);
    assert_eq!(value_of(&run.stdout, "before"), "main");
    assert_eq!(value_of(&run.stdout, "main_ok"), "main");
    assert_eq!(value_of(&run.stdout, "after"), "release/2.0");
    assert_eq!(value_of(&run.stdout, "sha"), release_sha);
    assert_eq!(value_of(&run.stdout, "glob_ok"), "release/2.0");
    assert_eq!(value_of(&run.stdout, "single_ok"), "release/2.0");

    // A branch outside the patterns is refused and the recipe stops there.
    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                r#"g.require_branch(["main", "hotfix/*"]); log("went on");"#,
            ),
            &[],
        )
        .expect_code(1);
    assert!(run.stderr.contains("galley::git"), "{}", run.stderr);
    assert!(
        flat(&run.stderr)
            .contains("branch `release/2.0` is not one of the allowed branches: main, hotfix/*"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("went on"));
}

#[test]
fn switching_to_a_branch_that_does_not_exist_fails_with_a_report() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("README", "main\n")]);
    let dir = sb.join("app");
    clone(&sb, &origin, &dir);
    let run = sb
        .run_recipe(&recipe(&dir, r#"g.switch_to("no-such-branch");"#), &[])
        .expect_code(1);
    assert!(
        run.stderr.contains("switching to `no-such-branch` failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("git said"),
        "git's own words are shown: {}",
        run.stderr
    );
    assert_eq!(
        sh(Path::new(&dir), &["git", "branch", "--show-current"]),
        "main"
    );
}

#[test]
fn pull_refuses_a_diverged_branch() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("README", "v1\n")]);
    let dir = sb.join("app");
    clone(&sb, &origin, &dir);

    // A commit made on the host only...
    let clone_dir = Path::new(&dir);
    std::fs::write(clone_dir.join("local.txt"), "local\n").unwrap();
    sh(clone_dir, &["git", "add", "-A"]);
    sh(clone_dir, &["git", "commit", "-q", "-m", "local change"]);
    let local_sha = sh(clone_dir, &["git", "rev-parse", "HEAD"]);
    // ...and a different one pushed to the origin.
    let remote_sha = origin.push(&[("README", "v2\n")], "remote change");

    let run = sb
        .run_recipe(&recipe(&dir, r#"g.pull(); log("went on");"#), &[])
        .expect_code(1);
    assert!(run.stderr.contains("galley::git"), "{}", run.stderr);
    assert!(
        flat(&run.stderr).contains("branch `main` has diverged from its upstream"),
        "the report says it diverged: {}",
        run.stderr
    );
    assert!(!run.stdout.contains("went on"));
    assert_eq!(
        sh(clone_dir, &["git", "rev-parse", "HEAD"]),
        local_sha,
        "nothing merged or rebased"
    );
    assert_ne!(local_sha, remote_sha);
    assert_eq!(
        std::fs::read_to_string(clone_dir.join("README")).unwrap(),
        "v1\n"
    );
}

#[test]
fn cloning_a_missing_repository_fails_with_a_report() {
    let sb = Sandbox::new();
    let dir = sb.join("app");
    let missing = sb.join("nope.git");
    let run = sb
        .run_recipe(&recipe(&dir, &format!("g.clone({missing:?});")), &[])
        .expect_code(1);
    assert!(
        run.stderr.contains(&format!("cloning {missing} failed")),
        "{}",
        run.stderr
    );
    assert!(!Path::new(&dir).exists());
}

#[test]
fn queries_outside_a_repository_say_to_clone_first() {
    let sb = Sandbox::new();
    let dir = sb.join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let run = sb
        .run_recipe(&recipe(&dir, "log(g.sha());"), &[])
        .expect_code(1);
    assert!(run.stderr.contains("reading HEAD failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("clone the repository first"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dry_run_clone_prints_the_command_and_clones_nothing() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("README", "hi\n")]);
    let dir = sb.join("app");
    let body = format!(
        r#"g.clone({:?}, #{{ branch: "main" }}); g.pull();"#,
        origin.url()
    );
    let run = sb
        .run_recipe(&recipe(&dir, &body), &["--dry-run"])
        .expect_code(0);
    assert!(
        run.stdout.contains(&format!(
            "[local] would run git clone --branch main -- {} {dir}",
            origin.url()
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("would run git -C"), "{}", run.stdout);
    assert!(!Path::new(&dir).exists(), "a dry run cloned the repository");
}
