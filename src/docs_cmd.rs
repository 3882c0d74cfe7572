//! `shoal completions SHELL` and `shoal man`: shell completions and man pages made from
//! the clap definitions of `cli`, so they can never disagree with the flags the binary
//! takes. Both subcommands are hidden from `--help` (they are packaging tools, not
//! operations); the Debian package (`deploy/debian/build.sh`) and an operator's shell
//! profile call them.

use crate::cli::{Cli, ManArgs};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DocsError {
    #[error("cannot write the man page: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot write the man pages into {dir}: {source}")]
    WriteDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the completion script of `shell` for `shoal` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "shoal", out);
}

#[allow(
    clippy::disallowed_methods,
    reason = "a one-shot command that writes files before any runtime exists"
)]
/// `shoal man`: shoal(1) on `out`, or, with `--out-dir`, shoal(1) and one page per
/// subcommand (`shoal-manage.1`, ...) written there.
pub fn man(args: &ManArgs, out: &mut dyn Write) -> Result<(), DocsError> {
    let cmd = Cli::command();
    match &args.out_dir {
        None => clap_mangen::Man::new(cmd)
            .render(out)
            .map_err(DocsError::Write),
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .map_err(|source| DocsError::WriteDir {
                dir: dir.clone(),
                source,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(shell: clap_complete::Shell) -> String {
        let mut out = Vec::new();
        completions(shell, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_shell_completes_the_subcommands_and_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = completion(shell);
            for word in ["manage", "list", "tlsverify", "engine-refresh-min-interval"] {
                assert!(text.contains(word), "{shell} completion lacks {word}");
            }
        }
    }

    #[test]
    fn the_man_page_lists_the_subcommands() {
        let mut out = Vec::new();
        man(&ManArgs { out_dir: None }, &mut out).expect("rendered");
        let page = String::from_utf8(out).expect("utf-8");
        assert!(page.contains(".TH shoal 1"), "{page}");
        assert!(page.contains("shoal\\-manage(1)"), "{page}");
        // The packaging tools stay out of the operator's manual.
        assert!(!page.contains("completions"), "{page}");
    }
}
