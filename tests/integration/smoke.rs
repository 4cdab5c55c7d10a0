use crate::support::Sandbox;

#[test]
fn runs_an_argv_command_and_streams_its_output_with_the_host_prefix() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            r#"let r = local().run(["echo", "a b"]); log(`code=${r.code}`);"#,
            &[],
        )
        .expect_code(0);
    assert!(run.stdout.contains("[local] a b"), "{}", run.stdout);
    assert!(run.stdout.contains("code=0"), "{}", run.stdout);
}
