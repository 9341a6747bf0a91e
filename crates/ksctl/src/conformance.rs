//! `ksctl conformance`: the scenario suite, pass/fail per scenario; fails if any fails.

use ksclient::conformance;
use serde::Serialize;

use crate::args::ConformanceArgs;
use crate::session::Session;

#[derive(Serialize)]
struct Row {
    name: &'static str,
    about: &'static str,
    passed: bool,
    detail: Option<String>,
    seconds: f64,
}

pub fn run(session: &Session, args: &ConformanceArgs) -> Result<(), String> {
    if args.list {
        for s in conformance::scenarios() {
            println!("{:<14} {}", s.name, s.about);
        }
        return Ok(());
    }
    let json = args.json;
    let outcomes = conformance::run(session.backend(), args.only.as_deref(), |o| {
        if !json {
            match &o.result {
                Ok(()) => println!("pass  {:<14} {} ({:.2} s)", o.name, o.about, o.elapsed.as_secs_f64()),
                Err(e) => println!("FAIL  {:<14} {}\n      {}", o.name, o.about, e.replace('\n', "\n      ")),
            }
        }
    });
    if outcomes.is_empty() {
        return Err(format!(
            "no scenario matches '{}' (see ksctl conformance --list)",
            args.only.as_deref().unwrap_or("")
        ));
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    if json {
        let rows: Vec<Row> = outcomes
            .iter()
            .map(|o| Row {
                name: o.name,
                about: o.about,
                passed: o.result.is_ok(),
                detail: o.result.clone().err(),
                seconds: o.elapsed.as_secs_f64(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?);
    } else {
        println!(
            "{} of {} scenarios passed on the {} backend",
            outcomes.len() - failed,
            outcomes.len(),
            session.backend().name()
        );
    }
    if failed > 0 { Err(format!("{failed} scenario(s) failed")) } else { Ok(()) }
}
