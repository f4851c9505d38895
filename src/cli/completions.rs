//! `sealfs completions SHELL`: a completion script generated from the clap
//! definitions, so it always knows every command and option.

use clap::CommandFactory;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn print(shell: Shell) -> crate::Result<()> {
    let mut cmd = super::Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "sealfs", &mut std::io::stdout());
    Ok(())
}
