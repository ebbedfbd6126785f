//! Human and JSON output. JSON field names are a stable contract for scripts.

use std::path::Path;

use std::io::Write;

use pocketlm::{BackendInfo, BenchReport, MemoryPlan, Metrics, ModelInfo, RouteEvent, RoutedReply, TurnBenchReport};

const MIB: f64 = 1024.0 * 1024.0;

/// `info`: the model description and where it would run.
pub fn print_info(path: &Path, info: &ModelInfo, backend: &BackendInfo, json: bool) {
    if json {
        let mut value = serde_json::to_value(info).expect("model info serialises");
        value["path"] = serde_json::Value::String(path.display().to_string());
        value["backend"] = serde_json::to_value(backend).expect("backend info serialises");
        println!("{value}");
        return;
    }
    println!("path:              {}", path.display());
    println!("name:              {}", info.name.as_deref().unwrap_or("-"));
    println!("architecture:      {}", info.architecture);
    println!("parameters:        {:.1} M", info.parameter_count as f64 / 1e6);
    println!("quantization:      {}", info.quantization);
    println!("file size:         {:.1} MiB", info.file_size_bytes as f64 / MIB);
    println!("trained context:   {}", info.context_length_trained);
    println!("vocabulary:        {}", info.vocab_size);
    println!("layers:            {}", info.layers);
    println!("chat template:     {}", if info.has_chat_template { "yes" } else { "no (plain completion)" });
    println!("backend:           {}", backend_line(backend));
    println!("cpu:               {} (kernels: {})", backend.cpu.features.join(" "), backend.cpu.kernels.join(" "));
}

/// `vulkan on llvmpipe (...)`, or `cpu on ...` with the fallback reason.
pub fn backend_line(b: &BackendInfo) -> String {
    let mut line = format!("{} on {}", b.backend, b.device);
    if let Some(diff) = b.probe_max_diff {
        line += &format!(" (GPU self-test: max difference {:.3} %, {:.0} ms)", diff * 100.0, b.probe_ms);
    }
    if let Some(reason) = &b.fallback_reason {
        line += &format!(" (GPU requested, not used: {reason})");
    }
    line
}

/// Streams one routing event: text to stdout, a tool call as a line
/// `[call NAME ARGUMENTS]`, a switch of side as a note on stderr.
pub fn print_event(stdout: &mut std::io::Stdout, event: &RouteEvent) {
    match event {
        RouteEvent::Text(text) => {
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
        RouteEvent::Restart(reason) => {
            let _ = stdout.write_all(b"\n");
            let _ = stdout.flush();
            eprintln!("[{}: the answer above is abandoned; answering again on the other side]", reason.as_str());
        }
        RouteEvent::ToolCall(call) => {
            let _ = writeln!(stdout, "[call {} {}]", call.name, call.arguments);
            let _ = stdout.flush();
        }
    }
}

/// The JSON object of one answer: text, device metrics (null when the cloud
/// answered), route, cost, for a constrained answer the parsed value or
/// the chosen option with every option's probability (`structured`), and the
/// tools the model called (`tool_calls`: id, name, arguments).
pub fn reply_json(reply: &RoutedReply) -> serde_json::Value {
    let mut out = serde_json::json!({ "text": reply.text, "metrics": reply.metrics, "route": reply.route, "cost": reply.cost });
    if let Some(structured) = &reply.structured {
        out["structured"] = serde_json::json!(structured);
    }
    if !reply.tool_calls.is_empty() {
        out["tool_calls"] = serde_json::json!(reply.tool_calls);
    }
    out
}

/// `generate`: the JSON object, or (text already streamed) a newline and metrics on stderr.
pub fn print_reply(reply: &RoutedReply, json: bool) {
    if json {
        println!("{}", reply_json(reply));
    } else {
        println!();
        for call in &reply.tool_calls {
            println!("[tool call {}: {}({})]", call.id, call.name, call.arguments);
        }
        eprintln!("{}", route_line(reply));
    }
}

/// One human-readable line: where the answer came from, and its metrics or cost.
pub fn route_line(reply: &RoutedReply) -> String {
    let side = match reply.route.answered_by {
        pocketlm::AnsweredBy::Device => "device",
        pocketlm::AnsweredBy::Cloud => "cloud",
    };
    let mut line = format!("[{side} ({})", reply.route.reason.as_str());
    if let Some(m) = &reply.metrics {
        line.push_str(&format!(", {}", metrics_line(m).trim_start_matches('[').trim_end_matches(']')));
    }
    if reply.route.answered_by == pocketlm::AnsweredBy::Cloud {
        let c = &reply.cost;
        line.push_str(&format!(", cloud tokens {} in / {} out, cost {:.6}", c.cloud_input_tokens, c.cloud_output_tokens, c.cloud_cost));
    }
    line.push(']');
    line
}

/// One human-readable line of metrics.
pub fn metrics_line(m: &Metrics) -> String {
    format!(
        "[{} tokens, {}: ttft {:.0} ms, prefill {:.1} tok/s ({} evaluated, {} reused), decode {:.1} tok/s, peak RSS {:.0} MiB, load {:.0} ms]",
        m.generated_tokens,
        m.stop_reason.as_str(),
        m.ttft_ms,
        m.prefill_tokens_per_s,
        m.prompt_tokens_evaluated,
        m.prompt_tokens_reused,
        m.decode_tokens_per_s,
        m.peak_rss_bytes as f64 / MIB,
        m.load_ms
    )
}

/// `bench`: a table or one JSON object.
pub fn print_bench(r: &BenchReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).expect("bench report serialises"));
        return;
    }
    println!("model: {} ({}, {}), threads: {}", r.model, r.architecture, r.quantization, r.threads);
    let mut backend = format!("backend: {} on {} (CPU kernels: {})", r.backend, r.device, r.cpu_kernels.join(" "));
    if let Some(reason) = &r.fallback_reason {
        backend += &format!(", GPU requested, not used: {reason}");
    }
    println!("{backend}");
    println!("| test | tokens/s (median of {}) |", r.runs.len());
    println!("|---|---|");
    println!("| prefill pp{} | {:.1} |", r.prompt_tokens, r.prefill_tokens_per_s);
    println!("| decode tg{} | {:.1} |", r.gen_tokens, r.decode_tokens_per_s);
    println!("time to first token: {:.0} ms, load: {:.0} ms", r.ttft_ms, r.load_ms);
    println!(
        "peak RSS: {:.0} MiB measured, {:.0} MiB predicted by the planner (ctx {}, kv {}, weights {})",
        r.peak_rss_bytes as f64 / MIB,
        r.predicted_peak_bytes as f64 / MIB,
        r.context_length,
        r.kv_type.as_str(),
        r.weights.as_str()
    );
}

/// `bench --turns`: time to first token per turn, with and without KV reuse.
pub fn print_turns(r: &TurnBenchReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).expect("turn report serialises"));
        return;
    }
    println!("model: {}, backend: {} on {}, threads: {}", r.model, r.backend, r.device, r.threads);
    println!("| turn | TTFT with KV reuse (ms) | tokens evaluated | TTFT re-evaluating history (ms) | tokens evaluated |");
    println!("|---|---|---|---|---|");
    for t in &r.turns {
        println!("| {} | {:.0} | {} | {:.0} | {} |", t.turn, t.reuse_ttft_ms, t.reuse_evaluated, t.baseline_ttft_ms, t.baseline_evaluated);
    }
    if let (Some(first), Some(last)) = (r.turns.first(), r.turns.last()) {
        println!(
            "turn {} / turn 1 TTFT: {:.2}x with reuse, {:.2}x re-evaluating",
            last.turn,
            last.reuse_ttft_ms / first.reuse_ttft_ms,
            last.baseline_ttft_ms / first.baseline_ttft_ms
        );
    }
}

/// `bench --restore-history`: the next turn after a restore against re-evaluating.
pub fn print_restore(r: &pocketlm::RestoreBenchReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).expect("restore report serialises"));
        return;
    }
    println!("model: {}, backend: {}, threads: {}, kv: {}", r.model, r.backend, r.threads, r.kv_type.as_str());
    println!(
        "history: {} tokens; session file {:.1} MiB, saved in {:.0} ms (medians of {} runs below)",
        r.history_tokens,
        r.file_bytes as f64 / MIB,
        r.save_ms,
        r.runs
    );
    println!("| next turn | restore (ms) | TTFT (ms) | tokens evaluated | restore + TTFT (ms) |");
    println!("|---|---|---|---|---|");
    println!(
        "| restored from the file | {:.0} | {:.0} | {} | {:.0} |",
        r.restore_ms,
        r.restored_ttft_ms,
        r.restored_evaluated,
        r.restore_ms + r.restored_ttft_ms
    );
    println!("| transcript re-evaluated | - | {:.0} | {} | {:.0} |", r.reevaluated_ttft_ms, r.reevaluated_evaluated, r.reevaluated_ttft_ms);
    println!("speed-up: {:.1}x", r.reevaluated_ttft_ms / (r.restore_ms + r.restored_ttft_ms));
}

/// `plan`: the chosen configuration and its cost breakdown.
pub fn print_plan(p: &MemoryPlan, json: bool) {
    if json {
        println!("{}", serde_json::to_string(p).expect("plan serialises"));
        return;
    }
    let e = &p.estimate;
    println!("budget {:.0} MiB: {}", p.budget_bytes as f64 / MIB, if p.fits { "fits" } else { "does NOT fit" });
    println!("ctx {}, kv {}, batch {}, weights {}", p.ctx, p.kv_type.as_str(), p.batch_size, p.weights.as_str());
    let mut adapters = if e.adapter_bytes > 0 { format!(" + adapters {:.1}", e.adapter_bytes as f64 / MIB) } else { String::new() };
    if e.projector_bytes > 0 {
        adapters.push_str(&format!(" + projector {:.0}", e.projector_bytes as f64 / MIB));
    }
    println!(
        "predicted peak {:.0} MiB = weights {:.0} + KV {:.0} + compute {:.0} + overhead {:.0}{adapters}",
        p.predicted_peak_bytes as f64 / MIB,
        e.weights_bytes as f64 / MIB,
        e.kv_bytes as f64 / MIB,
        e.compute_bytes as f64 / MIB,
        e.overhead_bytes as f64 / MIB
    );
}
