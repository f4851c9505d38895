//! Progress of long operations (`put` of a large file, fsck, rekey): a bar
//! on a terminal, nothing otherwise (scripts and logs stay clean).

use std::io::IsTerminal;

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

fn styled(bar: indicatif::ProgressBar, template: &str) -> indicatif::ProgressBar {
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A bar counting files; its length is set once known.
pub fn files(what: &str) -> indicatif::ProgressBar {
    if !on_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    styled(
        indicatif::ProgressBar::new(0),
        &format!("{what} {{bar:40}} {{pos}}/{{len}} files, {{per_sec}}, ETA {{eta}}"),
    )
}

/// A bar counting bytes: of `total` when known (a regular file on standard
/// input), else a running count.
pub fn bytes(what: &str, total: Option<u64>) -> indicatif::ProgressBar {
    if !on_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    match total {
        Some(n) => styled(
            indicatif::ProgressBar::new(n),
            &format!("{what} {{bar:40}} {{bytes}}/{{total_bytes}}, {{bytes_per_sec}}, ETA {{eta}}"),
        ),
        None => styled(
            indicatif::ProgressBar::new_spinner(),
            &format!("{what} {{spinner}} {{bytes}}, {{bytes_per_sec}}"),
        ),
    }
}
