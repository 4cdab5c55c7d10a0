//! Starter recipes: what `galley init --template NAME` writes, and the bodies of the editors'
//! snippets (one source for both).

/// A starter recipe.
pub struct Template {
    /// Its name for `--template` and the snippet prefix `galley-NAME`.
    pub name: &'static str,
    /// One line on what it deploys.
    pub summary: &'static str,
    /// The recipe.
    pub text: &'static str,
}

/// The file `galley init` writes a template to.
pub const RECIPE_FILE: &str = "deploy.rhai";

/// The `.galleyignore` that `galley init` writes beside the recipe.
pub const GALLEYIGNORE: &str = include_str!("../../templates/galleyignore");

/// Every template, the default first.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "start",
        summary: "the start.sh replacement: pull, install, restart a process, health check",
        text: include_str!("../../templates/start.rhai"),
    },
    Template {
        name: "docker",
        summary: "build, push and replace a container, with a health check and image pruning",
        text: include_str!("../../templates/docker.rhai"),
    },
    Template {
        name: "blue-green",
        summary: "Docker blue/green behind nginx",
        text: include_str!("../../templates/blue-green.rhai"),
    },
    Template {
        name: "rolling",
        summary: "a rolling update of ssh hosts behind nginx, in batches",
        text: include_str!("../../templates/rolling.rhai"),
    },
    Template {
        name: "canary",
        summary: "one host first, watched for a window, then the others",
        text: include_str!("../../templates/canary.rhai"),
    },
    Template {
        name: "swarm",
        summary: "a Docker Swarm service update with Galley's lock and journal",
        text: include_str!("../../templates/swarm.rhai"),
    },
    Template {
        name: "watch",
        summary: "a local loop for `galley watch`: test, restart, check",
        text: include_str!("../../templates/watch.rhai"),
    },
];

/// The template called `name`.
pub fn get(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}
