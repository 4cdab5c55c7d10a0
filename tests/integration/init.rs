//! `galley init`: each template is a recipe that `galley check` accepts; nothing is overwritten.

use crate::support::Sandbox;

const TEMPLATES: &[&str] = &[
    "start",
    "docker",
    "blue-green",
    "rolling",
    "canary",
    "swarm",
    "watch",
];

#[test]
fn every_template_passes_check() {
    let sb = Sandbox::new();
    for template in TEMPLATES {
        let run = sb
            .run(&["init", "--template", template, template])
            .expect_code(0);
        assert!(run.stdout.contains("deploy.rhai"), "{}", run.stdout);
        let recipe = sb.path().join(template).join("deploy.rhai");
        let text = std::fs::read_to_string(&recipe).unwrap();
        assert!(
            text.starts_with("// deploy.rhai: "),
            "a commented recipe:\n{text}"
        );
        let ignore = std::fs::read_to_string(sb.path().join(template).join(".galleyignore"));
        assert!(ignore.unwrap().contains("*.log"));
        let recipe = recipe.to_string_lossy().into_owned();
        sb.run(&["check", &recipe]).expect_code(0);
    }
    let help = sb.run(&["init", "--help"]).expect_code(0);
    for template in TEMPLATES {
        assert!(help.stdout.contains(template), "--help lists {template}");
    }
}

#[test]
fn init_writes_the_start_recipe_into_the_current_folder_by_default() {
    let sb = Sandbox::new();
    sb.run(&["init"]).expect_code(0);
    let text = std::fs::read_to_string(sb.path().join("deploy.rhai")).unwrap();
    assert!(text.contains("galley/in_place"), "{text}");
    assert!(sb.path().join(".galleyignore").exists());
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.write("deploy.rhai", "log(\"mine\");\n");
    let run = sb.run(&["init", "--template", "rolling"]).expect_code(2);
    assert!(
        run.stderr.contains("galley::usage") && run.stderr.contains("deploy.rhai"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(sb.path().join("deploy.rhai")).unwrap(),
        "log(\"mine\");\n"
    );
    assert!(
        !sb.path().join(".galleyignore").exists(),
        "a refusal writes nothing at all"
    );

    let run = sb.run(&["init", "--template", "nope"]).expect_code(2);
    assert!(run.stderr.contains("blue-green"), "{}", run.stderr);
    sb.run(&["init", "--lib", "--template", "rolling"])
        .expect_code(2);
}
