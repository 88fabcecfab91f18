//! Every `ops …` line in docs/operations.md is a command the CLI accepts: a renamed subcommand
//! or flag fails here, not in the middle of an incident.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

#[test]
fn every_ops_command_in_the_runbook_is_accepted_by_the_cli() {
    let runbook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md")).unwrap();
    let commands: Vec<&str> =
        runbook.lines().map(str::trim).filter(|line| line.starts_with("ops ")).collect();
    assert!(commands.len() >= 8, "the runbook's ops commands: {commands:?}");
    for line in commands {
        // Naive splitting is enough: the runbook quotes at most one argument.
        let mut args: Vec<String> = Vec::new();
        let mut quoted: Option<String> = None;
        for word in line.split_whitespace().skip(1) {
            match &mut quoted {
                Some(text) => {
                    text.push(' ');
                    text.push_str(word.trim_end_matches('"'));
                    if word.ends_with('"') {
                        args.push(quoted.take().unwrap_or_default());
                    }
                }
                None if word.starts_with('"') && !word.ends_with('"') => {
                    quoted = Some(word.trim_start_matches('"').to_owned())
                }
                None => args.push(word.trim_matches('"').to_owned()),
            }
        }
        // `--help` after a full command line: clap checks every subcommand and flag before it
        // and then prints help instead of calling the gateway.
        args.push("--help".to_owned());
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ops")).args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "`{line}` is not accepted: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
