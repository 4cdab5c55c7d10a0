//! Shared recipe libraries: real bare repositories as origins (file:// and over the sshd
//! fixture with a key), the real cache, `galley lock|update|fetch|run|check|watch|init`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::sshd::Fleet;
use crate::support::{flat, sh, GitOrigin, Reaper, Run, Sandbox};
use crate::watch::Watcher;

/// The library's first version: a module that imports a file of its own, relatively.
const V1: &[(&str, &str)] = &[
    (
        "rolling.rhai",
        "import \"sub/helper\" as h;\n\nfn hi() { \"hi \" + h::version() }\n\nfn boom() {\n    throw \"boom in the library\";\n}\n",
    ),
    ("sub/helper.rhai", "fn version() { \"v1\" }\n"),
];

/// A recipe that uses the library `team`.
const RECIPE: &str = "import \"team/rolling\" as r;\nprint(\"said: \" + r::hi());\n";

/// A library origin in `sb/team/` with V1 on main, tagged `v1`.
fn library(sb: &Sandbox) -> GitOrigin {
    let root = sb.path().join("team");
    std::fs::create_dir_all(&root).unwrap();
    let origin = GitOrigin::new(&root, "main", V1);
    tag(&origin, "v1");
    origin
}

/// Points tag `name` at the seed's HEAD and pushes it (moving it if it exists).
fn tag(origin: &GitOrigin, name: &str) {
    sh(&origin.work, &["git", "tag", "-f", name]);
    sh(
        &origin.work,
        &[
            "git",
            "push",
            "-q",
            "-f",
            "origin",
            &format!("refs/tags/{name}"),
        ],
    );
}

fn file_url(origin: &GitOrigin) -> String {
    format!("file://{}", origin.bare.display())
}

/// Writes `proj/galley.toml` with `team = { git, rev }` and `proj/recipe.rhai`.
fn project(sb: &Sandbox, url: &str, rev: &str) {
    sb.write(
        "proj/galley.toml",
        &format!("[deps]\nteam = {{ git = \"{url}\", rev = \"{rev}\" }}\n"),
    );
    sb.write("proj/recipe.rhai", RECIPE);
}

/// The text of `proj/galley.lock`.
fn lockfile(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.path().join("proj/galley.lock")).expect("read galley.lock")
}

/// The value of `key = "..."` in the lockfile (its only library).
fn locked(sb: &Sandbox, key: &str) -> String {
    let prefix = format!("{key} = \"");
    lockfile(sb)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in galley.lock:\n{}", lockfile(sb)))
        .to_string()
}

/// The checkout of `commit` in the sandbox's cache.
fn checkout(sb: &Sandbox, commit: &str) -> PathBuf {
    sb.path().join(".cache/galley/checkouts").join(commit)
}

/// Go's dirhash h1 of the files in a work tree (without .git), computed by python3 on its own.
fn expected_hash(dir: &Path) -> String {
    let script = "import hashlib, base64, os, sys\n\
        root = sys.argv[1]\n\
        lines = []\n\
        for d, subdirs, files in os.walk(root):\n\
        \x20   subdirs[:] = [s for s in subdirs if s != '.git']\n\
        \x20   for f in files:\n\
        \x20       p = os.path.join(d, f)\n\
        \x20       rel = os.path.relpath(p, root)\n\
        \x20       lines.append((rel, hashlib.sha256(open(p, 'rb').read()).hexdigest()))\n\
        text = ''.join('%s  %s\\n' % (h, rel) for rel, h in sorted(lines))\n\
        print('h1:' + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode())\n";
    sh(dir, &["python3", "-c", script, dir.to_str().unwrap()])
}

#[test]
fn lock_pins_the_commit_and_hash_and_run_imports_the_library() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");

    let before = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(1);
    assert!(
        before.stderr.contains("galley::library_not_locked"),
        "{}",
        before.stderr
    );
    assert!(
        flat(&before.stderr).contains("run `galley lock`"),
        "{}",
        before.stderr
    );

    let lock = sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let sha = sh(&origin.work, &["git", "rev-parse", "HEAD"]);
    assert!(
        lock.stdout
            .contains(&format!("locked team @ {} (v1)", &sha[..7])),
        "{}",
        lock.stdout
    );
    let text = lockfile(&sb);
    assert!(text.contains("version = 1\n"), "{text}");
    assert!(text.contains("[[dep]]\nname = \"team\"\n"), "{text}");
    assert_eq!(locked(&sb, "rev"), "v1");
    assert_eq!(locked(&sb, "commit"), sha);
    assert_eq!(locked(&sb, "hash"), expected_hash(&origin.work));

    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);
    sb.invoke(["check", "recipe.rhai"])
        .dir("proj")
        .run()
        .expect_code(0);
    // A second lock changes nothing.
    let again = sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    assert!(
        again.stdout.contains("galley.lock is up to date"),
        "{}",
        again.stdout
    );
}

#[test]
fn a_failure_inside_a_library_points_at_the_library_file_and_commit() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.write(
        "proj/boom.rhai",
        "import \"team/rolling\" as r;\nr::boom();\n",
    );
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let short = &locked(&sb, "commit")[..7];

    let run = sb
        .invoke(["run", "boom.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(1);
    assert!(run.stderr.contains("boom in the library"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("[team/rolling @ {short}:6:5]")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[boom.rhai:2:4]"), "{}", run.stderr);
}

#[test]
fn update_moves_a_branch_and_lists_the_commits_in_between() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "main");
    let lock = sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    assert!(
        lock.stderr.contains("follows branch `main`"),
        "{}",
        lock.stderr
    );
    let old = locked(&sb, "commit");

    origin.push(
        &[("sub/helper.rhai", "fn version() { \"v2\" }\n")],
        "helper: say v2",
    );
    let new = origin.push(&[("README.md", "team recipes\n")], "add a README");
    // The lock pins: a run still gets the old commit.
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);

    let update = sb
        .invoke(["update", "team"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(
        update
            .stdout
            .contains(&format!("team: {} → {} (main)", &old[..7], &new[..7])),
        "{}",
        update.stdout
    );
    let listed: Vec<&str> = update
        .stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .collect();
    assert_eq!(listed.len(), 2, "{}", update.stdout);
    assert!(listed[0].ends_with(" add a README"), "{}", update.stdout);
    assert!(listed[1].ends_with(" helper: say v2"), "{}", update.stdout);
    assert_eq!(locked(&sb, "commit"), new);

    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v2"), "{}", run.stdout);
    let same = sb.invoke(["update"]).dir("proj").run().expect_code(0);
    assert!(same.stdout.contains("is up to date"), "{}", same.stdout);
    let unknown = sb
        .invoke(["update", "teem"])
        .dir("proj")
        .run()
        .expect_code(2);
    assert!(
        unknown.stderr.contains("did you mean `team`?"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_tag_that_moved_is_refused_at_fetch_until_update() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let old = locked(&sb, "commit");

    let new = origin.push(
        &[("sub/helper.rhai", "fn version() { \"moved\" }\n")],
        "retag",
    );
    tag(&origin, "v1");
    let fetch = sb.invoke(["fetch"]).dir("proj").run().expect_code(1);
    assert!(
        fetch.stderr.contains("galley::library_tag_moved"),
        "{}",
        fetch.stderr
    );
    assert!(
        flat(&fetch.stderr).contains(&format!(
            "tag `v1` of library `team` moved: it was {} when locked, it is {} now",
            &old[..7],
            &new[..7]
        )),
        "{}",
        fetch.stderr
    );
    assert!(
        flat(&fetch.stderr).contains("galley update team"),
        "{}",
        fetch.stderr
    );
    assert_eq!(
        locked(&sb, "commit"),
        old,
        "a refused fetch leaves the lock alone"
    );

    sb.invoke(["update", "team"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert_eq!(locked(&sb, "commit"), new);
    sb.invoke(["fetch"]).dir("proj").run().expect_code(0);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi moved"), "{}", run.stdout);
}

#[test]
fn a_tampered_checkout_is_refused_naming_the_library_and_the_file() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let commit = locked(&sb, "commit");
    let file = checkout(&sb, &commit).join("tree/sub/helper.rhai");
    assert!(
        std::fs::metadata(&file).unwrap().permissions().readonly(),
        "checkouts are read-only"
    );
    sh(sb.path(), &["chmod", "u+w", file.to_str().unwrap()]);
    std::fs::write(&file, "fn version() { \"evil\" }\n").unwrap();

    for args in [
        &["run", "recipe.rhai", "--output", "plain"][..],
        &["check", "recipe.rhai", "--output", "plain"][..],
    ] {
        let run = sb.invoke(args).dir("proj").run();
        assert_ne!(run.code, 0, "{args:?}");
        assert!(!run.stdout.contains("evil"), "{}", run.stdout);
        let text = flat(&run.stderr);
        assert!(
            run.stderr.contains("galley::library_tampered"),
            "{}",
            run.stderr
        );
        assert!(
            text.contains(&format!(
                "library team @ {} in the cache was changed after it was fetched: sub/helper.rhai was changed",
                &commit[..7]
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("[recipe.rhai:1:8]"), "{}", run.stderr);
        assert!(!run.stderr.contains("unknown_function"), "{}", run.stderr);
    }

    let fetch = sb.invoke(["fetch"]).dir("proj").run().expect_code(0);
    assert!(
        fetch.stdout.contains("had been changed"),
        "{}",
        fetch.stdout
    );
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);
}

#[test]
fn locked_fails_when_the_manifest_and_the_lock_disagree() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    origin.push(&[("sub/helper.rhai", "fn version() { \"v2\" }\n")], "v2");
    tag(&origin, "v2");
    project(&sb, &file_url(&origin), "v2");
    let lock_before = lockfile(&sb);

    let run = sb
        .invoke(["run", "recipe.rhai", "--locked", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(2);
    assert!(
        run.stderr.contains("galley::library_lock_mismatch"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("team: galley.toml says rev = \"v2\", galley.lock has \"v1\""),
        "{}",
        run.stderr
    );
    // CI=true means --locked, for fetch and lock too; nothing changes the lock.
    for args in [&["fetch"][..], &["lock"][..]] {
        let out = sb
            .invoke(args)
            .dir("proj")
            .env("CI", "true")
            .run()
            .expect_code(1);
        assert!(
            out.stderr.contains("galley::library_lock_mismatch"),
            "{}",
            out.stderr
        );
    }
    sb.invoke(["check", "recipe.rhai", "--locked"])
        .dir("proj")
        .run()
        .expect_code(2);
    assert_eq!(lockfile(&sb), lock_before);

    // Without --locked a run still never resolves: it says what to run.
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(1);
    assert!(
        flat(&run.stderr).contains("galley.lock is out of date for library `team`"),
        "{}",
        run.stderr
    );
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    assert_eq!(locked(&sb, "rev"), "v2");
    let run = sb
        .invoke(["run", "recipe.rhai", "--locked", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v2"), "{}", run.stdout);
}

#[test]
fn runs_offline_from_the_cache_when_the_origin_is_gone() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.invoke(["fetch"]).dir("proj").run().expect_code(0);
    let commit = locked(&sb, "commit");
    std::fs::rename(&origin.bare, sb.path().join("team/gone.git")).unwrap();

    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);

    // The checkout gone too: the run says what to run; fetch needs the origin, unless the
    // mirror has the commit and --offline says to use it (no chmod needed: folders are writable).
    std::fs::remove_dir_all(checkout(&sb, &commit)).unwrap();
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(1);
    assert!(
        run.stderr.contains("galley::library_not_fetched"),
        "{}",
        run.stderr
    );
    assert!(
        flat(&run.stderr).contains("run `galley fetch`"),
        "{}",
        run.stderr
    );
    let fetch = sb.invoke(["fetch"]).dir("proj").run().expect_code(1);
    assert!(
        fetch.stderr.contains("galley::library_fetch"),
        "{}",
        fetch.stderr
    );
    sb.invoke(["fetch", "--offline"])
        .dir("proj")
        .run()
        .expect_code(0);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);

    // A cache that never saw the library cannot be filled offline.
    let empty = sb
        .invoke(["fetch", "--offline"])
        .dir("proj")
        .env("GALLEY_CACHE", sb.path().join("other-cache"))
        .run()
        .expect_code(1);
    assert!(
        flat(&empty.stderr).contains("run `galley fetch` without --offline"),
        "{}",
        empty.stderr
    );
}

#[test]
fn two_concurrent_fetches_into_one_cache_both_succeed() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let commit = locked(&sb, "commit");
    for round in 0..3 {
        let cache = sb.path().join(format!("cache-{round}"));
        let children: Vec<_> = (0..2)
            .map(|_| {
                sb.galley()
                    .current_dir(sb.path().join("proj"))
                    .env("GALLEY_CACHE", &cache)
                    .arg("fetch")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            Run::from(child.wait_with_output().unwrap()).expect_code(0);
        }
        let leftovers: Vec<_> = std::fs::read_dir(cache.join("checkouts"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, vec![commit.clone()], "round {round}");
        let run = sb
            .invoke(["run", "recipe.rhai", "--output", "plain"])
            .dir("proj")
            .env("GALLEY_CACHE", &cache)
            .run()
            .expect_code(0);
        assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);
    }
}

#[test]
fn a_private_library_over_ssh_with_a_key() {
    let fleet = Fleet::start(1);
    let sb = Sandbox::new();
    let origin = library(&sb);
    let url = format!("ssh://{}{}", fleet.dest(0), origin.bare.display());
    project(&sb, &url, "v1");
    let ssh = |identity: &Path| {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
            identity.display(),
            fleet.known_hosts.display()
        )
    };
    let with_key = |args: &[&str], identity: &Path| {
        sb.invoke(args)
            .dir("proj")
            .env("GIT_SSH_COMMAND", ssh(identity))
            .run()
    };

    let refused = with_key(&["lock"], &sb.path().join("no-such-key")).expect_code(1);
    assert!(
        refused.stderr.contains("galley::library_fetch"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Permission denied"),
        "{}",
        refused.stderr
    );

    let lock = with_key(&["lock"], &fleet.key).expect_code(0);
    assert!(lock.stdout.contains("locked team @ "), "{}", lock.stdout);
    assert_eq!(locked(&sb, "git"), url);
    assert_eq!(
        locked(&sb, "commit"),
        sh(&origin.work, &["git", "rev-parse", "HEAD"])
    );
    // The run itself needs neither the key nor the host.
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("said: hi v1"), "{}", run.stdout);
}

#[test]
fn the_journal_names_the_libraries_a_deploy_loaded() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "v1");
    sb.write(
        "proj/deploy.rhai",
        "import \"team/rolling\" as r;\ndeploy::run(#{ app: \"libapp\", host: local(), strategy: \"team\" }, || r::hi());\n",
    );
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    let short = locked(&sb, "commit")[..7].to_string();
    let state = sb.path().join("state");
    let with_state = |args: &[&str]| {
        sb.invoke(args)
            .dir("proj")
            .env("GALLEY_STATE_DIR", &state)
            .run()
    };
    with_state(&["run", "deploy.rhai", "--output", "plain"]).expect_code(0);
    let history = with_state(&["history", "libapp", "--json"]).expect_code(0);
    assert!(
        history
            .stdout
            .contains(&format!("\"libraries\":[\"team @ {short}\"]")),
        "{}",
        history.stdout
    );
}

#[test]
fn watch_reloads_the_library_when_the_lock_changes() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let origin = library(&sb);
    project(&sb, &file_url(&origin), "main");
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    // --paths matches nothing in the folder: only the lock (watched by name) can trigger a run.
    let watcher = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "watch.out",
        &["recipe.rhai", "--paths", "nothing/**"],
    );
    let first = watcher.wait_runs(1);
    assert!(first.contains("said: hi v1"), "{first}");

    origin.push(&[("sub/helper.rhai", "fn version() { \"v2\" }\n")], "v2");
    sb.invoke(["update", "team"])
        .dir("proj")
        .run()
        .expect_code(0);
    let after = watcher.wait_run_after("waiting for changes");
    assert!(after.contains("said: hi v2"), "{after}");
}

#[test]
fn init_lib_writes_a_skeleton_that_checks_and_never_overwrites() {
    let sb = Sandbox::new();
    let init = sb.run(&["init", "--lib", "team-recipes"]).expect_code(0);
    for file in ["lib.rhai", "README.md", "test.rhai"] {
        assert!(
            sb.path().join("team-recipes").join(file).is_file(),
            "{file}: {}",
            init.stdout
        );
    }
    let lib = std::fs::read_to_string(sb.path().join("team-recipes/lib.rhai")).unwrap();
    assert!(lib.contains("team-recipes = { git ="), "{lib}");
    sb.run(&["check", "team-recipes/test.rhai"]).expect_code(0);
    let dry = sb
        .run(&[
            "run",
            "team-recipes/test.rhai",
            "--dry-run",
            "--output",
            "plain",
        ])
        .expect_code(0);
    assert!(
        dry.stdout.contains("team-recipes: deployed"),
        "{}",
        dry.stdout
    );

    std::fs::write(sb.path().join("team-recipes/README.md"), "mine\n").unwrap();
    let again = sb.run(&["init", "--lib", "team-recipes"]).expect_code(2);
    assert!(
        flat(&again.stderr).contains("would overwrite"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(sb.path().join("team-recipes/README.md")).unwrap(),
        "mine\n"
    );
    // Plain `galley init` writes a starter recipe now (tests/integration/init.rs); a library
    // and a template at once is a usage error.
    let usage = sb.run(&["init", "--lib", "--template", "start", "team-recipes"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

#[test]
fn a_library_in_a_folder_of_its_repository_is_hashed_and_imported_from_there() {
    let sb = Sandbox::new();
    let origin = library(&sb);
    origin.push(
        &[
            (
                "recipes/web.rhai",
                "import \"../rolling\" as r;\nfn hi() { \"web\" }\n",
            ),
            ("recipes/ok.rhai", "fn hi() { \"from recipes/\" }\n"),
        ],
        "recipes folder",
    );
    let url = file_url(&origin);
    sb.write(
        "proj/galley.toml",
        &format!("[deps]\nteam = {{ git = \"{url}\", rev = \"main\", path = \"recipes\" }}\n"),
    );
    sb.write(
        "proj/recipe.rhai",
        "import \"team/ok\" as ok;\nprint(ok::hi());\n",
    );
    sb.write(
        "proj/escape.rhai",
        "import \"team/web\" as w;\nprint(w::hi());\n",
    );
    sb.invoke(["lock"]).dir("proj").run().expect_code(0);
    assert_eq!(locked(&sb, "path"), "recipes");
    assert_eq!(
        locked(&sb, "hash"),
        expected_hash(&origin.work.join("recipes"))
    );

    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(0);
    assert!(run.stdout.contains("from recipes/"), "{}", run.stdout);
    // A library's relative imports stay inside its folder.
    let escape = sb
        .invoke(["run", "escape.rhai", "--output", "plain"])
        .dir("proj")
        .run()
        .expect_code(1);
    assert!(
        escape.stderr.contains("galley::module_not_found"),
        "{}",
        escape.stderr
    );
    assert!(
        flat(&escape.stderr).contains("its modules: ok, web"),
        "{}",
        escape.stderr
    );
}
