//! `liveness-trainer`: the CLI. Parses the flags (each subcommand's live in its module), runs the
//! subcommand, prints its result, and turns any error into one line on stderr and exit status 1.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};
use liveness_trainer::attacks::{self, AttackArgs};
use liveness_trainer::bench::{self, BenchArgs};
use liveness_trainer::config::{RunArgs, TrainConfig};
use liveness_trainer::export::{self, ExportArgs};
use liveness_trainer::report::{self, ReportArgs, report_lines};
use liveness_trainer::resume::GivenFlag;
use liveness_trainer::score_onnx::{self, FacesArgs, ScoreOnnxArgs};
use liveness_trainer::scoring::{self, EvalArgs, Evaluated};
use liveness_trainer::synthetic::{self, ChallengeClipArgs, SynthArgs};
use liveness_trainer::train::{self, RunEnd};

/// Writes one line of a command's output. A reader that went away (`… | head`) ends the command
/// quietly with success, as any Unix filter does, instead of the panic `println!` gives.
fn out_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`out_line`].
macro_rules! out {
    ($($arg:tt)*) => {
        out_line(&format!($($arg)*))
    };
}

#[derive(Parser)]
#[command(
    name = "liveness-trainer",
    version,
    about = "Train and check the face-liveness model (tch / libtorch)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on DATA/{real,replay,printed,2dmask}/<sample>/<5 frames>, validating on held-out subjects.
    Train(Box<TrainArgs>),
    /// Metrics of a checkpoint on a data folder.
    Eval(EvalArgs),
    /// One JSON line per sample: {"path","class","spoof"}.
    Score(EvalArgs),
    /// Training-step throughput (frames/s), synthetic or through the data loader; one JSON line.
    Bench(BenchArgs),
    /// Write NAME.onnx (wonnx's dialect) and its manifest NAME.json from a checkpoint.
    Export(ExportArgs),
    /// Like `score`, with an exported ONNX model, the face gate and the browser's preprocessing.
    ScoreOnnx(ScoreOnnxArgs),
    /// Cross-validation summary of fold runs: threshold from pooled validation scores, per-fold
    /// and mean ± std metrics, ROC and training-curve PNGs, report.json.
    Report(ReportArgs),
    /// Write a small generated dataset (drawn faces, live vs textured "attack") for smoke runs.
    Synth(SynthArgs),
    /// A fake camera's clip for the head-pose challenge: a drawn head performing the steps, or
    /// a printed picture of it turned to imitate them (for browser tests and `challenge_eval`).
    SynthChallenge(ChallengeClipArgs),
    /// The face detector over a data folder: one JSON line per sample with each frame's faces.
    Faces(FacesArgs),
    /// Synthetic prints and screen replays made from a dataset's live samples (seeded effect
    /// families: halftone, paper, sheen, bend; moiré, gamma, refresh, bezel, glare).
    SynthAttacks(AttackArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    config: TrainConfig,
    #[command(flatten)]
    run: RunArgs,
}

/// The flags of `train` typed on the command line (resume compares them with the checkpoint).
fn given_flags(matches: &ArgMatches) -> Vec<GivenFlag> {
    let command = Cli::command();
    let Some(train) = command.find_subcommand("train") else {
        return Vec::new();
    };
    train
        .get_arguments()
        .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| GivenFlag {
            id: a.get_id().to_string(),
            flag: a
                .get_long()
                .map_or_else(|| a.get_id().to_string(), |l| format!("--{l}")),
        })
        .collect()
}

fn run() -> Result<ExitCode> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Train(a) => {
            let given = matches
                .subcommand_matches("train")
                .map(given_flags)
                .unwrap_or_default();
            let flag = train::interrupt_flag()?;
            Ok(match train::run(a.config, &a.run, &given, &flag)? {
                RunEnd::Finished => ExitCode::SUCCESS,
                // Ctrl+C: state saved; the conventional exit status of SIGINT.
                RunEnd::Interrupted if flag.load(Ordering::SeqCst) => ExitCode::from(130),
                RunEnd::Interrupted => ExitCode::SUCCESS,
            })
        }
        Command::Eval(a) => {
            if let Evaluated::Report { report, loss } = scoring::evaluate_folder(&a, false)? {
                if a.json {
                    out!("{}", serde_json::to_string(&report)?);
                } else {
                    out!(
                        "{}: {} samples, loss {loss:.4}",
                        a.data.display(),
                        report.samples
                    );
                    out!("{}", report_lines(&report));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Score(a) => {
            if let Evaluated::Lines(lines) = scoring::evaluate_folder(&a, true)? {
                for line in lines {
                    out!("{}", serde_json::to_string(&line)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(a) => {
            let done = export::export(&a)?;
            let m = &done.manifest;
            out!(
                "wrote {} ({} bytes, {} input {:?}, sha256 {}) and {} in {:.2}s",
                a.out.display(),
                done.bytes,
                m.architecture,
                m.input.shape(),
                m.sha256,
                done.manifest_path.display(),
                done.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::ScoreOnnx(a) => {
            score_onnx::score_folder(&a, |line| {
                if let Ok(json) = serde_json::to_string(line) {
                    out!("{json}");
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) => {
            let r = report::cross_validate(&a)?;
            out!("{}", report::markdown(&r));
            Ok(ExitCode::SUCCESS)
        }
        Command::Synth(a) => {
            synthetic::write_dataset(&a.out, a.subjects, a.per_class, a.width, a.height, a.heads)?;
            out!(
                "wrote {} samples to {}",
                2 * a.subjects * a.per_class,
                a.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SynthChallenge(a) => {
            let n = synthetic::write_challenge_clip(&a)?;
            out!("wrote a {n}-frame challenge clip to {}", a.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::SynthAttacks(a) => {
            let n = attacks::write_attacks(&a)?;
            out!("wrote {n} synthetic attack samples to {}", a.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Faces(a) => {
            score_onnx::faces_folder(&a, |line| {
                if let Ok(json) = serde_json::to_string(line) {
                    out!("{json}");
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => {
            out!("{}", serde_json::to_string(&bench::run(&a)?)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            // Each error's message already ends with its cause (`…: {source}`); the alternate
            // form would print every cause twice.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
