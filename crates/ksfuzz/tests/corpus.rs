//! Replays every committed fuzz input — the seed corpus and every past crash
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) — through the harnesses under plain
//! `cargo test`, so a fixed bug stays fixed without a fuzzer.
//!
//! `KSFUZZ_WRITE_SEEDS=1 cargo test -p ksfuzz` (re)writes the seeds of `ksfuzz::seeds`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "pin_create" => ksfuzz::seeds::pin_create(),
        "property" => ksfuzz::seeds::property(),
        "stream_headers" => ksfuzz::seeds::stream_headers(),
        "sequence" => ksfuzz::seeds::sequence(),
        _ => unreachable!("unknown target {target}"),
    }
}

#[test]
fn every_committed_input_passes() {
    let mut replayed = 0;
    for &(target, harness) in ksfuzz::TARGETS {
        let corpus = fuzz_dir().join("corpus").join(target);
        if std::env::var_os("KSFUZZ_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&corpus).unwrap();
            for (i, seed) in seeds(target).iter().enumerate() {
                std::fs::write(corpus.join(format!("seed-{i:02}")), seed).unwrap();
            }
        }
        for seed in seeds(target) {
            harness(&seed);
            replayed += 1;
        }
        for dir in [corpus, fuzz_dir().join("regressions").join(target)] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            files.sort();
            for file in files {
                let input = std::fs::read(&file).unwrap();
                eprintln!("{target}: {}", file.display());
                harness(&input);
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 20, "only {replayed} inputs replayed");
}

#[test]
fn short_and_empty_inputs_are_harmless() {
    for &(_, harness) in ksfuzz::TARGETS {
        for input in [&[][..], &[0xFF], &[1, 2, 3], &[0; 40]] {
            harness(input);
        }
    }
}
