//! What a tracking server is told of a run, read from its events: the start first (once), each
//! epoch's metrics at the epoch as step (non-finite values left out), the model's files and the
//! status at the end.

use kiln_core::protocol::{EventKind, Outcome, RunFinished};
use kiln_core::track::{Translator, Update};

use crate::common::{scratch, write};
use crate::diagnosis::history;

fn finished(outcome: Outcome) -> EventKind {
    EventKind::Finished(RunFinished {
        outcome,
        epochs_completed: 1,
        best_epoch: Some(1),
        best_validation_accuracy: Some(0.5),
        seconds: 1.0,
        restored_epoch: None,
    })
}

#[test]
fn a_runs_events_become_start_epochs_model_and_status() {
    let run = scratch("tracking");
    write(&run.join("experiment.toml"), "name = \"x\"\n");
    write(&run.join("checkpoints/best/model.bpk"), "weights");
    write(&run.join("checkpoints/best/state.json"), "{}");
    let params = vec![("train.epochs".to_string(), "1".to_string())];
    let mut translator = Translator::new(&run, params.clone());
    let mut epoch = history(&[(0.6, 0.5, 0.9, f64::NAN)]).remove(0);
    epoch.dropout = 0.25;
    let first = translator.updates(&kiln_core::here::event(
        Some(1),
        Some(3),
        EventKind::Epoch(epoch),
    ));
    assert!(matches!(&first[0], Update::Start { params: p, .. } if *p == params));
    let Update::Epoch { epoch, metrics, .. } = &first[1] else {
        panic!("{first:?}")
    };
    assert_eq!(*epoch, 1);
    let value = |key: &str| metrics.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    assert_eq!(value("val_accuracy"), Some(0.5));
    assert_eq!(value("dropout"), Some(0.25));
    assert_eq!(value("val_loss"), None, "NaN is left out");

    let end = translator.updates(&kiln_core::here::event(
        None,
        None,
        finished(Outcome::Stopped),
    ));
    assert_eq!(end.len(), 2, "no second start: {end:?}");
    let Update::Artifacts(files) = &end[0] else {
        panic!("{end:?}")
    };
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "model/model.bpk",
            "model/state.json",
            "model/experiment.toml"
        ]
    );
    assert!(matches!(
        end[1],
        Update::End {
            status: "KILLED",
            ..
        }
    ));
    let failed = Translator::new(&run, Vec::new()).updates(&kiln_core::here::event(
        None,
        None,
        EventKind::Failed {
            error: "boom".into(),
        },
    ));
    assert!(matches!(
        failed[1],
        Update::End {
            status: "FAILED",
            ..
        }
    ));
}
