//! `Repo`: git on a host through the `git` CLI, always with argv.

use globset::Glob;
use rhai::{Array, Dynamic, Map};

use super::host::Host;
use super::options::{string_list, Opts};
use super::validate;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{last_lines, STDERR_TAIL};
use crate::error::{Failure, RhaiResult};
use crate::exec::{Action, Command, Output};

/// A git working copy on a host.
#[derive(Clone)]
pub struct Repo {
    host: Host,
    dir: String,
}

/// `git -C DIR ARGS...`.
fn git_in(dir: &str, args: &[&str]) -> Command {
    Command::new(["git", "-C", dir].into_iter().chain(args.iter().copied()))
}

/// `git clone [--branch BRANCH] -- URL DIR`: `--` so that a URL cannot be taken for an option.
fn clone_command(url: &str, dir: &str, branch: Option<&str>) -> Command {
    let mut argv = vec!["git", "clone"];
    if let Some(branch) = branch {
        argv.extend(["--branch", branch]);
    }
    argv.extend(["--", url, dir]);
    Command::new(argv)
}

impl Repo {
    fn git(&self, args: &[&str]) -> Command {
        git_in(&self.dir, args)
    }

    fn failure(&self, problem: String, out: Option<&Output>, help: &str) -> Failure {
        Failure::Git {
            host: self.host.name().to_string(),
            dir: self.dir.clone(),
            problem,
            detail: out
                .map(|o| last_lines(&o.stderr, STDERR_TAIL))
                .unwrap_or_default(),
            help: help.to_string(),
        }
    }

    /// Records that this run changes the working copy (for watch mode, which ignores it).
    fn changing(&self) {
        if self.host.is_local() {
            self.host.ctx().wrote_inside(&self.dir);
        }
    }

    /// Runs a git command that changes something; a non-zero exit becomes a git failure.
    fn change(&self, args: &[&str], what: &str, help: &str) -> Result<Output, Failure> {
        self.changing();
        let out = self.host.perform(Action::Run(self.git(args)))?;
        if out.success() {
            Ok(out)
        } else {
            Err(self.failure(
                format!("{what} failed (exit code {})", out.code.unwrap_or(-1)),
                Some(&out),
                help,
            ))
        }
    }

    /// Runs a read-only git command (also in a dry run) and returns its trimmed stdout.
    fn query(&self, args: &[&str], what: &str) -> Result<String, Failure> {
        let out = self.host.probe(self.git(args))?;
        if out.success() {
            return Ok(out.stdout.trim().to_string());
        }
        if self.host.ctx().dry_run {
            return Ok(String::new());
        }
        let help = if out.stderr.contains("not a git repository")
            || out.stderr.contains("cannot change to")
        {
            "clone the repository first: h.git(dir).clone(url)"
        } else {
            "run the same git command in that directory to see more"
        };
        Err(self.failure(format!("{what} failed"), Some(&out), help))
    }

    /// Refuses a branch name that is an option or that git itself would not take
    /// (`git check-ref-format --branch`, run on the host).
    pub fn check_branch(&self, branch: &str) -> Result<(), Failure> {
        validate::git_branch(branch)?;
        let out = self.host.probe(Command::new([
            "git",
            "check-ref-format",
            "--branch",
            branch,
        ]))?;
        if out.success() {
            return Ok(());
        }
        Err(validate::invalid(
            "git branch name",
            branch,
            validate::GIT_BRANCH_RULE,
        ))
    }

    /// Clones `url` into the repo's directory.
    pub fn clone_into_dir(&self, url: &str, branch: Option<&str>) -> Result<(), Failure> {
        if let Some(branch) = branch {
            // A tag is allowed here too, so only the option check applies.
            validate::git_branch(branch)?;
        }
        self.changing();
        let out = self
            .host
            .perform(Action::Run(clone_command(url, &self.dir, branch)))?;
        if out.success() {
            return Ok(());
        }
        Err(self.failure(
            format!("cloning {url} failed"),
            Some(&out),
            "check the URL, the branch and that this host may read the repository",
        ))
    }

    /// The current branch (empty on a detached HEAD).
    pub fn branch(&self) -> Result<String, Failure> {
        self.query(&["branch", "--show-current"], "reading the branch")
    }

    /// Fast-forwards the current branch to its upstream; a diverged branch is an error.
    pub fn pull(&self) -> Result<(), Failure> {
        self.changing();
        let out = self
            .host
            .perform(Action::Run(self.git(&["pull", "--ff-only"])))?;
        if out.success() {
            return Ok(());
        }
        let branch = self.branch().unwrap_or_default();
        let diverged =
            out.stderr.contains("Not possible to fast-forward") || out.stderr.contains("diverg");
        if diverged {
            return Err(self.failure(
                format!("branch `{branch}` has diverged from its upstream; refusing to merge or rebase"),
                Some(&out),
                "the host's copy has commits the remote does not: inspect them with `git log @{u}..` there, then reset or push them",
            ));
        }
        Err(self.failure(
            format!("pulling `{branch}` failed"),
            Some(&out),
            "check that the branch has an upstream and the remote is reachable",
        ))
    }

    /// Checks out commit `rev` (a sha, or any name git resolves to a commit) as a detached HEAD.
    /// `rev` is resolved first with `--end-of-options`, so it can never be taken for an option,
    /// and the checkout is given the full hex name only.
    pub fn checkout(&self, rev: &str) -> Result<String, Failure> {
        let spec = format!("{rev}^{{commit}}");
        let sha = self.host.probe(self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ]))?;
        let sha = sha.stdout.trim().to_string();
        let is_hex = sha.len() >= 40 && sha.chars().all(|c| c.is_ascii_hexdigit());
        if !is_hex && !self.host.ctx().dry_run {
            return Err(self.failure(
                format!("`{rev}` is not a commit in this repository"),
                None,
                "fetch first (repo.fetch()) if the commit is new, and check the sha",
            ));
        }
        let target = if is_hex { sha.as_str() } else { rev };
        self.change(
            &["checkout", "--detach", target],
            &format!("checking out {rev}"),
            "check that the working copy has no conflicting changes",
        )?;
        Ok(target.to_string())
    }

    /// Fails unless the current branch matches one of the glob `patterns`.
    pub fn require_branch(&self, patterns: &[String]) -> Result<String, Failure> {
        let branch = self.branch()?;
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|e| Failure::BadValue {
                function: "require_branch".into(),
                what: format!("pattern {pattern:?}"),
                expected: "a glob such as \"release/*\"".into(),
                got: e.to_string(),
            })?;
            if glob.compile_matcher().is_match(&branch) {
                return Ok(branch);
            }
        }
        let shown = if branch.is_empty() {
            "(detached HEAD)".to_string()
        } else {
            format!("`{branch}`")
        };
        Err(self.failure(
            format!(
                "branch {shown} is not one of the allowed branches: {}",
                patterns.join(", ")
            ),
            None,
            "switch to an allowed branch, or add this one to require_branch([...]) in the recipe",
        ))
    }
}

const CLONE_OPTIONS: &[OptionSpec] = &[opt(
    "branch",
    Type::String,
    "the remote's default branch",
    "the branch to check out",
)];

const CLONE: Spec = Spec::method(
    "clone",
    &[("repo", "Repo"), ("url", "string"), ("opts", "map")],
    "()",
)
.doc("Clones `url` into the repo's folder (which must not exist yet).")
.example(r#"h.git("/srv/app").clone("https://github.com/acme/app.git", #{ branch: "main" });"#)
.options(CLONE_OPTIONS);

const REPO: &[(&str, &str)] = &[("repo", "Repo")];

const REQUIRE_BRANCH: Spec = Spec::method(
    "require_branch",
    &[("repo", "Repo"), ("patterns", "array")],
    "string",
)
.doc("Fails unless the current branch matches one of the glob patterns; returns the branch.")
.example(r#"repo.require_branch(["main", "release/*"]);"#);

/// Registers `host.git(dir)` and the `Repo` methods.
// One registration per function of the API: a list, not logic.
#[allow(clippy::too_many_lines)]
pub fn register(api: &mut Api) {
    api.register_type::<Repo>(
        "Repo",
        "A git working copy on a host (host.git(dir)), driven through the git CLI with argv.",
    );
    api.register(
        Spec::method("to_string", REPO, "string")
            .doc("The repo as text: `Repo(DIR on HOST)`.")
            .example("log(repo.to_string());"),
        |g: &mut Repo| format!("Repo({} on {})", g.dir, g.host.name()),
    );
    api.register(
        Spec::method("git", &[("host", "Host"), ("dir", "string")], "Repo")
            .doc("The git working copy in `dir` on the host (nothing runs until a method is called).")
            .example(r#"let repo = local().git("/srv/app");"#),
        |h: &mut Host, dir: &str| Repo {
            host: h.clone(),
            dir: dir.to_string(),
        },
    );
    api.register(
        Spec::property(REPO, "dir", "string")
            .doc("The repo's folder.")
            .example("log(repo.dir);"),
        |g: &mut Repo| g.dir.clone(),
    );
    api.register(
        CLONE.without_options(),
        |g: &mut Repo, url: &str| -> RhaiResult<()> { Ok(g.clone_into_dir(url, None)?) },
    );
    api.register(
        CLONE,
        |g: &mut Repo, url: &str, opts: Map| -> RhaiResult<()> {
            let opts = Opts::new("clone", opts, CLONE_OPTIONS)?;
            let branch = opts.string("branch")?;
            Ok(g.clone_into_dir(url, branch.as_deref())?)
        },
    );
    api.register(
        Spec::method("fetch", REPO, "()")
            .doc("`git fetch --prune` from the remote.")
            .example("repo.fetch();"),
        |g: &mut Repo| -> RhaiResult<()> {
            g.change(
                &["fetch", "--prune"],
                "fetching",
                "check that the remote is reachable from the host",
            )?;
            Ok(())
        },
    );
    api.register(
        Spec::method("switch_to", &[("repo", "Repo"), ("branch", "string")], "()")
            .doc("Switches to a branch (`git switch`; `switch` is a Rhai keyword).")
            .example(r#"repo.switch_to("main");"#),
        |g: &mut Repo, branch: &str| -> RhaiResult<()> {
            g.check_branch(branch)?;
            g.change(
                &["switch", "--", branch],
                &format!("switching to `{branch}`"),
                "check that the branch exists (fetch first) and that the working copy has no conflicting changes",
            )?;
            Ok(())
        },
    );
    api.register(
        Spec::method("pull", REPO, "()")
            .doc("Pulls the current branch, fast-forward only: a branch that has diverged is an error that says so.")
            .example("repo.pull();"),
        |g: &mut Repo| -> RhaiResult<()> { Ok(g.pull()?) },
    );
    api.register(
        Spec::method("checkout", &[("repo", "Repo"), ("sha", "string")], "string")
            .doc("Checks out a commit (a sha or any name git resolves to one) as a detached HEAD; returns its full sha.")
            .example(r"repo.checkout(params.sha);"),
        |g: &mut Repo, sha: &str| -> RhaiResult<String> { Ok(g.checkout(sha)?) },
    );
    api.register(
        Spec::method("sha", REPO, "string")
            .doc("The full sha of HEAD.")
            .example("let sha = repo.sha();"),
        |g: &mut Repo| -> RhaiResult<String> {
            Ok(g.query(&["rev-parse", "HEAD"], "reading HEAD")?)
        },
    );
    api.register(
        Spec::method("short_sha", REPO, "string")
            .doc("The short sha of HEAD.")
            .example(r"log(`at ${repo.short_sha()}`);"),
        |g: &mut Repo| -> RhaiResult<String> {
            Ok(g.query(&["rev-parse", "--short", "HEAD"], "reading HEAD")?)
        },
    );
    api.register(
        Spec::method("branch", REPO, "string")
            .doc("The current branch (\"\" on a detached HEAD).")
            .example("let branch = repo.branch();"),
        |g: &mut Repo| -> RhaiResult<String> { Ok(g.branch()?) },
    );
    api.register(
        Spec::method("is_clean", REPO, "bool")
            .doc("Whether the working copy has no changes (`git status --porcelain` is empty).")
            .example(r#"if !repo.is_clean() { throw "local changes"; }"#),
        |g: &mut Repo| -> RhaiResult<bool> {
            Ok(g.query(&["status", "--porcelain"], "reading the status")?
                .is_empty())
        },
    );
    api.register(
        Spec::method(
            "changed",
            &[("repo", "Repo"), ("from", "string"), ("to", "string")],
            "array",
        )
        .doc("The files changed between two revisions (`git diff --name-only FROM..TO`).")
        .example(r#"if repo.changed(old, repo.sha()).contains("uv.lock") { h.run("uv sync"); }"#),
        |g: &mut Repo, from: &str, to: &str| -> RhaiResult<Array> {
            validate::git_revision(from)?;
            validate::git_revision(to)?;
            let range = format!("{from}..{to}");
            let out = g.query(
                &["diff", "--name-only", "--end-of-options", &range, "--"],
                &format!("listing changes in {range}"),
            )?;
            Ok(out.lines().map(|l| Dynamic::from(l.to_string())).collect())
        },
    );
    api.register(
        REQUIRE_BRANCH,
        |g: &mut Repo, patterns: Array| -> RhaiResult<String> {
            let patterns = string_list(&Dynamic::from(patterns)).unwrap_or_default();
            Ok(g.require_branch(&patterns)?)
        },
    );
    api.register(
        Spec {
            params: &[("repo", "Repo"), ("pattern", "string")],
            ..REQUIRE_BRANCH
        }
        .example(r#"repo.require_branch("main");"#),
        |g: &mut Repo, pattern: &str| -> RhaiResult<String> {
            Ok(g.require_branch(&[pattern.to_string()])?)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_commands_are_argv_in_the_working_copy() {
        assert_eq!(
            git_in("/srv/my app", &["fetch", "--prune"]).program,
            crate::exec::Program::Exec(
                ["git", "-C", "/srv/my app", "fetch", "--prune"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            git_in("/srv/app", &["pull", "--ff-only"]).to_string(),
            "git -C /srv/app pull --ff-only"
        );
        assert_eq!(
            clone_command("https://example.com/app.git", "/srv/app", Some("v1.2")).to_string(),
            "git clone --branch v1.2 -- https://example.com/app.git /srv/app"
        );
        assert_eq!(
            clone_command("-oProxyCommand=x", "app", None).to_string(),
            "git clone -- -oProxyCommand=x app"
        );
    }
}
