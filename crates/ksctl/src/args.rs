//! The command line.

use clap::{Args, Parser, Subcommand};

/// The ksring harness: list, inspect, stream through, benchmark and test KsRing filters.
#[derive(Parser, Debug)]
#[command(
    name = "ksctl",
    version,
    about,
    long_about = "The ksring harness: list, inspect, stream through, benchmark and conformance-test \
KsRing filters.\n\nWithout --emulated it talks to the driver installed on this Windows machine. With \
--emulated it boots kshost, installs the real driver code from inf/ksring.inx and talks to that, \
under kshost's verifier.",
    after_help = "Examples:\n  ksctl stream --emulated                 stream 2 GiB through the emulated driver, verified\n  \
ksctl info --emulated --json            everything a client can discover, as JSON\n  \
ksctl conformance                       run the conformance suite against the installed driver\n  \
ksctl bench --emulated --sizes 1K,64K   throughput per frame size and ring capacity"
)]
pub struct Cli {
    /// Use the emulated machine (kshost running the real driver) instead of the installed driver.
    #[arg(long, global = true)]
    pub emulated: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List KsRing filters (interface path and friendly name).
    List(ListArgs),
    /// Show everything discoverable about a filter: pin factories, every `KSPROPSETID_Pin`
    /// property, topology, component id, ring capacity and statistics.
    Info(InfoArgs),
    /// Stream a verifiable pattern through a filter and check every byte and header.
    Stream(StreamArgs),
    /// Measure throughput over frame sizes and ring capacities.
    Bench(BenchArgs),
    /// Run the conformance suite; exits non-zero if any scenario fails.
    Conformance(ConformanceArgs),
    /// Stream while cancelling, resetting and stopping both pins at random; check that nothing is
    /// reordered or repeated and that every byte is accounted for.
    Soak(SoakArgs),
    /// Chain three filter instances pin to pin through IRP-source pins (F1's output pushes into
    /// F2's input, F3's input pulls from F2's output), stream through all three and verify.
    Graph(GraphArgs),
}

/// Output and filter selection shared by the commands.
#[derive(Args, Debug)]
pub struct Common {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The interface path of the filter (default: the first KsRing filter found).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(flatten)]
    pub common: Common,
    /// Payload to stream (K, M, G suffixes: powers of 1024).
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub bytes: u64,
    /// Frame sizes, as MIN..MAX or one size.
    #[arg(long, default_value = "0..64K", value_parser = parse_range)]
    pub frames: (u64, u64),
    /// Read buffer sizes per header, as MIN..MAX or one size.
    #[arg(long, default_value = "1K..64K", value_parser = parse_range)]
    pub reads: (u64, u64),
    /// Format of both pins: "stream" or "pcm:CHANNELS:BITS:RATE".
    #[arg(long, default_value = "stream", value_parser = parse_format)]
    pub format: Format,
    /// Ring capacity (default: the driver's).
    #[arg(long, value_parser = parse_size)]
    pub capacity: Option<u64>,
    /// Requests in flight on each side.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub in_flight: u32,
    /// Frames per write request and headers per read request.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch: u32,
    /// Seed of the frame pattern and the read sizes.
    #[arg(long, default_value_t = 0x5EED_CAFE)]
    pub seed: u64,
    /// Do not fill or check payload bytes (lengths and metadata are still checked).
    #[arg(long)]
    pub no_verify: bool,
    /// Also stream the same bytes unverified first, and print both rates and their ratio.
    #[arg(long, conflicts_with = "no_verify")]
    pub compare: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: Common,
    /// Frame sizes to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1K,64K,1M", value_parser = parse_size)]
    pub sizes: Vec<u64>,
    /// Ring capacities to sweep.
    #[arg(long, value_delimiter = ',', default_value = "256K,4M", value_parser = parse_size)]
    pub capacities: Vec<u64>,
    /// Payload per cell.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub bytes: u64,
}

#[derive(Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    pub common: Common,
    /// How long to run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seconds: u64,
    /// Mean pause between disturbances, in milliseconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub disturb_ms: u64,
    /// Ring capacity.
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub capacity: u64,
    /// Seed of sizes and disturbances.
    #[arg(long, default_value_t = 0x50A4)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Payload to stream (K, M, G suffixes: powers of 1024).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub bytes: u64,
    /// Frame sizes, as MIN..MAX or one size.
    #[arg(long, default_value = "0..96K", value_parser = parse_range)]
    pub frames: (u64, u64),
    /// Read buffer sizes per header at F3's output, as MIN..MAX or one size.
    #[arg(long, default_value = "1..48K", value_parser = parse_range)]
    pub reads: (u64, u64),
    /// Format of every pin: "stream" or "pcm:CHANNELS:BITS:RATE".
    #[arg(long, default_value = "stream", value_parser = parse_format)]
    pub format: Format,
    /// Ring capacity of all three filters (default: the driver's).
    #[arg(long, value_parser = parse_size)]
    pub capacity: Option<u64>,
    /// Seed of the frame pattern and the read sizes.
    #[arg(long, default_value_t = 0x6A_F00D)]
    pub seed: u64,
    /// Do not fill or check payload bytes (lengths, metadata and the filters' counts are still
    /// checked): the chain's own speed, not the verifier's.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Args, Debug)]
pub struct ConformanceArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run only the scenarios whose name contains this.
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}

/// A format's `KSDATAFORMAT` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format(pub Vec<u8>);

/// `stream` or `pcm:CHANNELS:BITS:RATE`.
pub fn parse_format(s: &str) -> Result<Format, String> {
    if s == "stream" {
        return Ok(Format(ksclient::request::stream_format()));
    }
    let bad = || format!("'{s}': use \"stream\" or \"pcm:CHANNELS:BITS:RATE\" (e.g. pcm:2:16:48000)");
    let fields: Vec<&str> = s.split(':').collect();
    let [kind, channels, bits, rate] = fields.as_slice() else { return Err(bad()) };
    if *kind != "pcm" {
        return Err(bad());
    }
    let channels: u16 = channels.parse().map_err(|_| bad())?;
    let bits: u16 = bits.parse().map_err(|_| bad())?;
    let rate: u32 = rate.parse().map_err(|_| bad())?;
    Ok(Format(ksclient::request::pcm_format(channels, bits, rate)))
}

/// `4096`, `64K`, `4M`, `2G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a size (e.g. 4096, 64K, 4M, 2G)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M or G)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{s}' is too large"))
}

/// `MIN..MAX` or one size.
pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse_size(a)?, parse_size(b)?);
            if a > b {
                return Err(format!("'{s}': the minimum is above the maximum"));
            }
            Ok((a, b))
        }
        None => parse_size(s).map(|n| (n, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("5T").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(parse_range("0..64K"), Ok((0, 65536)));
        assert_eq!(parse_range("1K"), Ok((1024, 1024)));
        assert!(parse_range("2K..1K").is_err());
        assert_eq!(parse_format("stream"), Ok(Format(ksclient::request::stream_format())));
        assert_eq!(parse_format("pcm:2:16:48000"), Ok(Format(ksclient::request::pcm_format(2, 16, 48_000))));
        assert!(parse_format("pcm:2:16").is_err());
        assert!(parse_format("pcm:x:16:48000").is_err());
        assert!(parse_format("video").is_err());
    }
}
