//! `build`: the context folder sent as a tar that honours `.dockerignore`, the Engine's build
//! output streamed line by line, and a failed step reported with its own output.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use globset::GlobMatcher;

use super::client::DockerHost;
use crate::error::DockerProblem;
use crate::error::Failure;
use crate::exec::docker::Request;
use crate::exec::Stream;
use crate::primitives::validate;

/// How many lines of a failed step's output the report shows.
const STEP_OUTPUT: usize = 20;

/// What to build.
pub struct BuildSpec {
    pub context: String,
    pub file: String,
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// `.dockerignore` rules: Go-style globs relative to the context, `!` re-includes, the last
/// matching rule wins, and a rule that matches a folder covers everything in it.
struct Ignore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Whether some `!` rule could bring back a file inside an excluded folder.
    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, include)| *include)
    }
}

impl Ignore {
    fn load(context: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            let pattern = pattern.trim_end_matches('/');
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!(".dockerignore: {line:?}: {e}"))?;
            rules.push((glob.compile_matcher(), include));
        }
        Ok(Ignore { rules })
    }

    fn excludes(&self, relative: &Path) -> bool {
        let mut excluded = false;
        for (glob, include) in &self.rules {
            if relative
                .ancestors()
                .any(|p| !p.as_os_str().is_empty() && glob.is_match(p))
            {
                excluded = !include;
            }
        }
        excluded
    }
}

/// The context folder as a tar, without what `.dockerignore` excludes (the Dockerfile and the
/// `.dockerignore` itself always go, as with the docker CLI).
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>, String> {
    let ignore = Ignore::load(context)?;
    let always = [Path::new(dockerfile), Path::new(".dockerignore")];
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut stack = vec![context.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(context).expect("inside the context");
            let excluded = ignore.excludes(relative) && !always.contains(&relative);
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_dir() {
                // An excluded folder is still searched when an exception may apply inside it
                // (Docker does the same); its files are then judged one by one.
                if !excluded {
                    tar.append_dir(relative, &path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                if !excluded || ignore.has_exceptions() {
                    stack.push(path);
                }
            } else if !excluded {
                tar.append_path_with_name(&path, relative)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    tar.into_inner().map_err(|e| e.to_string())
}

/// Builds the image and returns its id ("" in a dry run).
pub fn build(docker: &DockerHost, spec: &BuildSpec) -> Result<String, Failure> {
    for tag in &spec.tags {
        validate::image_reference(tag)?;
    }
    let options = BuildImageOptions {
        dockerfile: spec.file.clone(),
        t: spec.tags.first().cloned(),
        rm: true,
        forcerm: true,
        buildargs: Some(spec.build_args.clone()),
        labels: Some(spec.labels.clone()),
        platform: spec.platform.clone().unwrap_or_default(),
        target: spec.target.clone().unwrap_or_default(),
        ..Default::default()
    };
    let request = Request::Build {
        context: spec.context.clone(),
        options,
        more_tags: spec.tags.iter().skip(1).cloned().collect(),
    };
    Ok(docker.perform(request)?.id())
}

/// Sends a `Request::Build`: the context folder as a tar, every line of the build's output
/// printed as it comes; then gives the image its other tags. Returns the image's id.
pub fn send(
    docker: &DockerHost,
    context_dir: &str,
    options: BuildImageOptions,
    more_tags: &[String],
) -> Result<String, Failure> {
    let host = docker.host.name().to_string();
    let context = Path::new(context_dir);
    let file = options.dockerfile.clone();
    let bad_context = |why: String| Failure::Docker {
        host: host.clone(),
        problem: DockerProblem::Build,
        message: format!("cannot read the build context {context_dir}: {why}"),
        detail: Vec::new(),
        help: "the context is a folder on this machine, relative to where galley runs".into(),
    };
    if !context.join(&file).is_file() {
        return Err(bad_context(format!("there is no {file} in it")));
    }
    let tar = context_tar(context, &file).map_err(bad_context)?;
    let printer = docker.host.ctx().printer.clone();
    let api = docker.api.clone();
    let outcome = docker.host.ctx().wait("building an image", async move {
        let mut stream = api.build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut id = None;
        let mut step = String::new();
        let mut step_output: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err((error, step, step_output))
                }
                Err(e) => return Err((e.to_string(), step, step_output)),
            };
            if let Some(text) = &info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    printer.line(&host, Stream::Stdout, line);
                    if line.starts_with("Step ") {
                        step = line.to_string();
                        step_output.clear();
                    } else if !line.contains("intermediate container")
                        && !line.trim_start().starts_with("---> Running in")
                    {
                        step_output.push(line.to_string());
                    }
                }
            }
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err((error, step, step_output));
            }
            if let Some(aux) = info.aux.and_then(|a| a.id) {
                id = Some(aux);
            }
        }
        Ok(id.unwrap_or_default())
    })?;
    let id = outcome.map_err(|(error, step, output)| {
        let mut detail = Vec::new();
        if !step.is_empty() {
            detail.push(step.clone());
        }
        let tail = &output[output.len().saturating_sub(STEP_OUTPUT)..];
        detail.extend(tail.iter().map(|l| format!("  {l}")));
        Failure::Docker {
            host: docker.host.name().to_string(),
            problem: DockerProblem::Build,
            message: if step.is_empty() {
                format!("the build failed: {}", error.trim())
            } else {
                format!("the build failed at {step}: {}", error.trim())
            },
            detail,
            help: "fix that step of the Dockerfile; the lines above are the step's own output"
                .into(),
        }
    })?;
    for tag in more_tags {
        super::images::tag(docker, &id, tag)?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules_follow_docker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "# comment\n*.log\nnode_modules\n**/secret.txt\n!keep.log\n",
        )
        .unwrap();
        let ignore = Ignore::load(dir.path()).unwrap();
        assert!(ignore.excludes(Path::new("a.log")));
        assert!(
            !ignore.excludes(Path::new("sub/a.log")),
            "anchored at the root"
        );
        assert!(
            ignore.excludes(Path::new("node_modules/x/y.js")),
            "a folder covers its files"
        );
        assert!(ignore.excludes(Path::new("deep/er/secret.txt")));
        assert!(!ignore.excludes(Path::new("keep.log")), "`!` re-includes");
        assert!(!ignore.excludes(Path::new("app.py")));
    }
}
