//! `ksctl info`: everything a client can discover about a filter.

use ksabi::{
    GUID, KSPIN_COMMUNICATION_BOTH, KSPIN_COMMUNICATION_SINK, KSPIN_COMMUNICATION_SOURCE, StatusText,
};
use ksclient::request::{guid_at, u32_at};
use ksclient::{Filter, Io, Properties};
use ksring_api::{KSCATEGORY_KSRING, KsRingStatistics, PIN_FACTORIES};
use serde::Serialize;

use crate::args::{Common, InfoArgs};
use crate::session::Session;

/// Opens the filter a command addresses.
pub fn open_filter<'s>(session: &'s Session, common: &Common) -> Result<Filter<'s>, String> {
    let b = session.backend();
    match &common.path {
        Some(p) => Filter::open(b, p).map_err(|e| format!("opening {p}: {e}")),
        None => Filter::open_first(b).map_err(|e| format!("opening the first KsRing filter: {e}")),
    }
}

/// A GUID with its KS name when ksabi or ksring-api knows it.
pub fn guid_name(g: &GUID) -> String {
    let known = ksabi::guids::ALL.iter().chain(OURS.iter()).find(|(_, v)| v == g).map(|(n, _)| *n);
    known.map_or_else(|| g.to_string(), |n| format!("{n} {g}"))
}

const OURS: &[(&str, GUID)] = &[
    ("KSCATEGORY_KSRING", KSCATEGORY_KSRING),
    ("PINCATEGORY_KSRING_INPUT", ksring_api::PINCATEGORY_KSRING_INPUT),
    ("PINCATEGORY_KSRING_OUTPUT", ksring_api::PINCATEGORY_KSRING_OUTPUT),
    ("PINNAME_KSRING_INPUT", ksring_api::PINNAME_KSRING_INPUT),
    ("PINNAME_KSRING_OUTPUT", ksring_api::PINNAME_KSRING_OUTPUT),
];

/// A one-line description of a format or range.
pub fn describe_format(bytes: &[u8]) -> String {
    let (Some(major), Some(sub)) = (guid_at(bytes, 16), guid_at(bytes, 32)) else {
        return format!("({} bytes)", bytes.len());
    };
    if major == ksabi::KSDATAFORMAT_TYPE_STREAM {
        return "byte stream".into();
    }
    if major == ksabi::KSDATAFORMAT_TYPE_AUDIO && sub == ksabi::KSDATAFORMAT_SUBTYPE_PCM {
        let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if bytes.len() == 88 {
            // KSDATARANGE_AUDIO
            let f = |at| u32_at(bytes, at).unwrap_or(0);
            return format!(
                "PCM range: up to {} channels, {}-{} bits, {}-{} Hz",
                f(64),
                f(68),
                f(72),
                f(76),
                f(80)
            );
        }
        if let (Some(ch), Some(rate), Some(bits)) = (u16_at(66), u32_at(bytes, 68), u16_at(78)) {
            return format!("PCM {ch} ch {bits}-bit {rate} Hz");
        }
    }
    format!("{} / {}", guid_name(&major), guid_name(&sub))
}

#[derive(Serialize, Default)]
struct PinInfo {
    id: u32,
    name: Option<String>,
    category: Option<String>,
    data_flow: Option<&'static str>,
    communication: Option<&'static str>,
    instances: Option<(u32, u32)>,
    global_instances: Option<(u32, u32)>,
    necessary_instances: Option<u32>,
    interfaces: Vec<String>,
    mediums: Vec<String>,
    data_ranges: Vec<String>,
    proposed_format: Option<String>,
}

#[derive(Serialize, Default)]
struct Info {
    pin_factories: Option<u32>,
    categories: Vec<String>,
    nodes: Vec<String>,
    connections: Vec<(u32, u32, u32, u32)>,
    component: Option<String>,
    capacity: Option<u32>,
    statistics: Option<KsRingStatistics>,
    pins: Vec<PinInfo>,
    errors: Vec<String>,
}

/// Keeps a property's value, or records why it could not be read.
fn keep<T>(errors: &mut Vec<String>, what: &str, r: Result<T, Io>) -> Option<T> {
    r.map_err(|io| errors.push(format!("{what}: {}", StatusText(io.status)))).ok()
}

fn flow_name(v: u32) -> &'static str {
    match v {
        1 => "in (data sink)",
        2 => "out (data source)",
        _ => "unknown",
    }
}

fn communication_name(v: u32) -> &'static str {
    match v.cast_signed() {
        KSPIN_COMMUNICATION_SINK => "IRP sink",
        KSPIN_COMMUNICATION_SOURCE => "IRP source",
        KSPIN_COMMUNICATION_BOTH => "IRP sink or source (both)",
        4 => "bridge",
        _ => "none",
    }
}

fn gather(f: &Filter<'_>) -> Info {
    let mut i = Info::default();
    let e = &mut i.errors;
    i.pin_factories = keep(e, "pin factories", f.pin_factories());
    i.categories = keep(e, "categories", f.categories()).unwrap_or_default().iter().map(guid_name).collect();
    i.nodes = keep(e, "nodes", f.nodes()).unwrap_or_default().iter().map(guid_name).collect();
    i.connections = keep(e, "connections", f.connections())
        .unwrap_or_default()
        .iter()
        .map(|c| (c.FromNode, c.FromNodePin, c.ToNode, c.ToNodePin))
        .collect();
    i.component = keep(e, "component id", f.component_id()).map(|c| {
        format!(
            "manufacturer {} product {} component {} name {} version {}.{}",
            c.Manufacturer, c.Product, c.Component, c.Name, c.Version, c.Revision
        )
    });
    i.capacity = keep(e, "capacity", f.capacity());
    i.statistics = keep(e, "statistics", f.statistics());
    for id in 0..i.pin_factories.unwrap_or(PIN_FACTORIES) {
        let ids = |e: &mut Vec<String>, mediums| {
            keep(e, "identifiers", f.identifiers(id, mediums))
                .unwrap_or_default()
                .iter()
                .map(|(set, id, flags)| format!("{} id {id} flags {flags}", guid_name(set)))
                .collect()
        };
        let p = PinInfo {
            id,
            name: keep(e, "pin name", f.name(id)),
            category: keep(e, "pin category", f.category(id)).map(|g| guid_name(&g)),
            data_flow: keep(e, "data flow", f.data_flow(id)).map(flow_name),
            communication: keep(e, "communication", f.communication(id)).map(communication_name),
            instances: keep(e, "instances", f.instances(id)),
            global_instances: keep(e, "global instances", f.global_instances(id)),
            necessary_instances: keep(e, "necessary instances", f.necessary_instances(id)),
            interfaces: ids(e, false),
            mediums: ids(e, true),
            data_ranges: keep(e, "data ranges", f.data_ranges(id, false))
                .unwrap_or_default()
                .iter()
                .map(|r| describe_format(r))
                .collect(),
            proposed_format: keep(e, "proposed format", f.proposed_format(id)).map(|b| describe_format(&b)),
        };
        i.pins.push(p);
    }
    i
}

pub fn run(session: &Session, args: &InfoArgs) -> Result<(), String> {
    let f = open_filter(session, &args.common)?;
    let info = gather(&f);
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    println!("filter      {} pin factories", info.pin_factories.map_or("?".into(), |n| n.to_string()));
    println!("component   {}", opt(&info.component));
    println!("categories  {}", info.categories.join(", "));
    let node = |n: u32| if n == ksabi::KSFILTER_NODE { "filter".to_string() } else { format!("node {n}") };
    let edges: Vec<String> = info
        .connections
        .iter()
        .map(|&(a, ap, b, bp)| format!("{} pin {ap} -> {} pin {bp}", node(a), node(b)))
        .collect();
    println!("topology    {} nodes; {}", info.nodes.len(), edges.join(", "));
    if let Some(c) = info.capacity {
        println!("ring        capacity {c} bytes");
    }
    if let Some(s) = info.statistics {
        println!(
            "statistics  in {} frames / {} bytes, out {} / {}, discarded {} / {}, fill {} (high water {}), pending {} writes {} reads",
            s.frames_in,
            s.bytes_in,
            s.frames_out,
            s.bytes_out,
            s.discarded_frames,
            s.discarded_bytes,
            s.fill,
            s.high_water,
            s.pending_writes,
            s.pending_reads
        );
    }
    for p in &info.pins {
        println!("pin {}       \"{}\"  {}", p.id, opt(&p.name), opt(&p.category));
        println!("  data flow     {}", p.data_flow.unwrap_or("?"));
        println!("  communication {}", p.communication.unwrap_or("?"));
        let inst = |v: Option<(u32, u32)>| v.map_or("?".into(), |(max, cur)| format!("{cur} of {max}"));
        println!(
            "  instances     {} here, {} device-wide, {} necessary",
            inst(p.instances),
            inst(p.global_instances).replace("of 4294967295", "of unlimited"),
            p.necessary_instances.map_or("?".into(), |n| n.to_string())
        );
        println!("  interfaces    {}", p.interfaces.join("; "));
        println!("  mediums       {}", p.mediums.join("; "));
        for (n, r) in p.data_ranges.iter().enumerate() {
            println!("  {}{r}", if n == 0 { "data ranges   " } else { "              " });
        }
        println!("  proposed      {}", opt(&p.proposed_format));
    }
    for e in &info.errors {
        println!("could not read {e}");
    }
    Ok(())
}
