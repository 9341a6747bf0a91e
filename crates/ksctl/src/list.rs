//! `ksctl list`: the KsRing filters the backend can see.

use ksring_api::KSCATEGORY_KSRING;
use serde::Serialize;

use crate::args::ListArgs;
use crate::session::Session;

#[derive(Serialize)]
struct Listed {
    path: String,
    friendly_name: Option<String>,
}

pub fn run(session: &Session, args: &ListArgs) -> Result<(), String> {
    let found: Vec<Listed> = session
        .backend()
        .filters(&KSCATEGORY_KSRING)
        .into_iter()
        .map(|f| Listed { path: f.path, friendly_name: f.friendly_name })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?);
    } else if found.is_empty() {
        println!("no KsRing filters (interface category {KSCATEGORY_KSRING})");
    } else {
        for f in &found {
            println!("{:<10} {}", f.friendly_name.as_deref().unwrap_or("(unnamed)"), f.path);
        }
    }
    Ok(())
}
