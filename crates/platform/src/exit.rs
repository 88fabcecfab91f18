//! How a service's process ends when it cannot run: one line on standard error that names the
//! service and says what to change, and a failure exit status. Returning the error from `main`
//! would print its `Debug` form instead: the message, a "Caused by:" list on several lines and,
//! with `RUST_BACKTRACE` set, a stack trace — not what someone starting the service needs, and
//! not what `make run` can quote when it stops everything (scripts/run.sh shows the last line).

use std::process::ExitCode;

/// The exit status of `main`: success, or the error and its causes on one line.
pub fn report(service: &str, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error_line(service, &error));
            ExitCode::FAILURE
        }
    }
}

/// `<service>: error: <message>: <cause>: ...` (anyhow's `{:#}`), with any line breaks inside a
/// message folded so the whole error stays one line.
pub fn error_line(service: &str, error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    let folded: Vec<&str> = message.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    format!("{service}: error: {}", folded.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_setup_a_start_up_error_is_one_line_with_its_causes() {
        let error = anyhow::anyhow!("password: too short\nuse 12 characters or more")
            .context("BOOTSTRAP_ADMIN_PASSWORD is not acceptable");
        let line = error_line("order-api", &error);
        assert_eq!(
            line,
            "order-api: error: BOOTSTRAP_ADMIN_PASSWORD is not acceptable: password: too short use 12 characters or more"
        );
        assert!(!line.contains('\n'));
    }
}
