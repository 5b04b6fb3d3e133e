//! Using a trained model from the command line: `evaluate` and `predict`.

use std::io::Write;
use std::process::ExitCode;

use super::args::{EvaluateArgs, ModelOptions, PredictArgs};
use crate::infer::TrainedModel;
use crate::infer::evaluate::{self, EvaluationReport};
use crate::infer::predict::{self, Prediction};
use crate::report;
use crate::runs;

fn open(options: &ModelOptions) -> anyhow::Result<TrainedModel> {
    let path = runs::resolve_run(&options.runs_dir, &options.run)?;
    Ok(TrainedModel::open(
        &path,
        options.checkpoint,
        options.backend,
    )?)
}

pub fn evaluate(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let trained = open(&args.model)?;
    if let Some(note) = &trained.note
        && !args.json
    {
        eprintln!("note: {note}");
    }
    let report = evaluate::evaluate(&trained, args.data.as_deref())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        evaluation_text(&report)
    };
    let _ = write!(std::io::stdout().lock(), "{text}");
    Ok(ExitCode::SUCCESS)
}

/// `kiln evaluate`'s report.
pub fn evaluation_text(report: &EvaluationReport) -> String {
    let mut out = format!(
        "run         {}\ncheckpoint  {} (after epoch {})\ndata        {}\nimages      {}{}\naccuracy    {:.4}\nloss        {:.4}\n\n",
        report.run_id,
        report.checkpoint,
        report.epochs_completed,
        report.data,
        report.images,
        if report.skipped > 0 {
            format!(" ({} unreadable file(s) left out)", report.skipped)
        } else {
            String::new()
        },
        report.accuracy,
        report.loss,
    );
    out.push_str(&report::class_table(&report.class_names, &report.classes));
    out.push_str("\nconfusion (rows: true class, columns: predicted)\n");
    out.push_str(&report::confusion_table(
        &report.class_names,
        &report.classes,
    ));
    out
}

pub fn predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let trained = open(&args.model)?;
    if let Some(note) = &trained.note {
        eprintln!("note: {note}");
    }
    let files = predict::expand_inputs(&args.inputs);
    if files.is_empty() {
        return Err(super::BadInput("no files found in the folders given".into()).into());
    }
    let names = &trained.preprocessing.classes;
    let top = args.top.clamp(1, names.len());
    let mut csv = match &args.csv {
        Some(path) => {
            let mut writer = csv::Writer::from_path(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            writer.write_record(csv_header(top))?;
            Some((path, writer))
        }
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    let (mut failed, mut written) = (0usize, Ok(()));
    predict::predict(&trained, files, top, |prediction| {
        if prediction.outcome.is_err() {
            failed += 1;
        }
        let _ = writeln!(stdout, "{}", prediction_line(prediction, names));
        if let Some((_, writer)) = &mut csv
            && written.is_ok()
        {
            written = writer.write_record(csv_row(prediction, names, top));
        }
    })?;
    if let Some((path, mut writer)) = csv {
        written
            .and_then(|()| writer.flush().map_err(csv::Error::from))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if failed > 0 {
        eprintln!("{failed} file(s) could not be classified (see the lines marked error)");
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per file: `path  class  probability  [other top classes]`, or the error.
fn prediction_line(prediction: &Prediction, names: &[String]) -> String {
    let path = prediction.path.display();
    match &prediction.outcome {
        Ok(top) => {
            let ranked: Vec<String> = top
                .iter()
                .map(|&(class, p)| format!("{}  {p:.4}", names[class]))
                .collect();
            format!("{path}  {}", ranked.join("  "))
        }
        Err(err) => format!("{path}  error: {err}"),
    }
}

fn csv_header(top: usize) -> Vec<String> {
    let mut header = vec!["path".to_string(), "class".into(), "probability".into()];
    for k in 2..=top {
        header.push(format!("class_{k}"));
        header.push(format!("probability_{k}"));
    }
    header.push("error".into());
    header
}

fn csv_row(prediction: &Prediction, names: &[String], top: usize) -> Vec<String> {
    let mut row = vec![prediction.path.display().to_string()];
    match &prediction.outcome {
        Ok(ranked) => {
            for &(class, p) in ranked {
                row.push(names[class].clone());
                row.push(format!("{p:.6}"));
            }
            row.resize(1 + 2 * top, String::new());
            row.push(String::new());
        }
        Err(err) => {
            row.resize(1 + 2 * top, String::new());
            row.push(err.clone());
        }
    }
    row
}
