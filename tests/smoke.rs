//! First light: the real driver in kshost, one filter, both pins, a short verified stream.

use ksabi::{KSSTATE_RUN, STATUS_SUCCESS};
use ksclient::emulated::Emulated;
use ksclient::stream::{self, Config, Progress};
use ksclient::{Filter, Properties, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

#[test]
fn short_stream() {
    let backend = Emulated::boot().expect("install");
    {
        let filter = Filter::open_first(&backend).expect("filter");
        let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
        let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
        assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mb: u64 = std::env::var("SMOKE_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
        let cfg = Config { bytes: mb << 20, ..Config::default() };
        let report = stream::run(&backend, input, &output, &cfg, &Progress::default()).expect("stream");
        assert!(report.bytes >= mb << 20);
        let stats = filter.statistics().expect("stats");
        assert_eq!(stats.bytes_out, report.bytes);
        eprintln!("{report:?}\n{stats:?}");
    }
    backend.shutdown().assert_clean();
}
