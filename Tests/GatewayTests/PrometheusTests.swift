@testable import Gateway
import Hummingbird
import Testing

/// The hand-written Prometheus text exposition writer (format 0.0.4) and the metrics store over it.
@Suite struct PrometheusTests {
    @Test func labelValuesEscapeBackslashQuoteAndNewline() {
        #expect(PrometheusWriter.escapeLabel(#"a\b"#) == #"a\\b"#)
        #expect(PrometheusWriter.escapeLabel(#"say "hi""#) == #"say \"hi\""#)
        #expect(PrometheusWriter.escapeLabel("two\nlines") == #"two\nlines"#)
        #expect(PrometheusWriter.escapeLabel("plain-é/模型") == "plain-é/模型")
        var w = PrometheusWriter()
        w.family("x_total", type: "counter", help: "back\\slash and\nnewline")
        w.sample("x_total", [("model", "m\"1\\\n"), ("route", "/v1")], 3)
        #expect(w.text == """
            # HELP x_total back\\\\slash and\\nnewline
            # TYPE x_total counter
            x_total{model="m\\"1\\\\\\n",route="/v1"} 3

            """)
    }

    @Test func numbersAsPrometheusWritesThem() {
        #expect(PrometheusWriter.format(3) == "3")
        #expect(PrometheusWriter.format(0.25) == "0.25")
        #expect(PrometheusWriter.format(.infinity) == "+Inf")
        #expect(PrometheusWriter.format(-.infinity) == "-Inf")
        #expect(PrometheusWriter.format(.nan) == "NaN")
    }

    @Test func histogramBucketsAreCumulativeAndEndAtInf() {
        var h = Histogram(bounds: [0.1, 1, 10])
        for v in [0.0625, 0.09375, 0.5, 2, 3, 50] { h.observe(v) }
        var w = PrometheusWriter()
        w.histogram("d_seconds", [("model", "m")], h)
        #expect(w.text == """
            d_seconds_bucket{model="m",le="0.1"} 2
            d_seconds_bucket{model="m",le="1"} 3
            d_seconds_bucket{model="m",le="10"} 5
            d_seconds_bucket{model="m",le="+Inf"} 6
            d_seconds_sum{model="m"} 55.65625
            d_seconds_count{model="m"} 6

            """)
    }

    @Test func storeRendersEveryFamilyWithHelpAndType() {
        let m = PrometheusMetrics()
        m.request(model: "smollm2", route: "/v1/chat/completions", status: 200)
        m.request(model: "smollm2", route: "/v1/chat/completions", status: 200)
        m.completion(model: "smollm2", seconds: 0.3, firstToken: 0.02, promptTokens: 10, completionTokens: 4)
        m.rateLimited()
        m.batchPreempted(3)
        m.upstreamError(provider: "upstream-a")
        var g = PrometheusMetrics.Gauges()
        g.models = [.init(name: "smollm2", loaded: true, queueDepth: 2, memoryBytes: 1024)]
        g.circuits = [("upstream-a/smollm2", true)]
        g.streams = (running: 3, unattended: 1)
        let text = m.render(g)
        for family in ["switchyard_requests_total", "switchyard_request_duration_seconds", "switchyard_time_to_first_token_seconds",
                       "switchyard_tokens_total", "switchyard_rate_limited_total", "switchyard_upstream_errors_total",
                       "switchyard_model_loaded", "switchyard_queue_depth", "switchyard_model_memory_bytes", "switchyard_circuit_open",
                       "switchyard_generation_tokens_per_second", "switchyard_cache_requests_total", "switchyard_batch_preemptions_total",
                       "switchyard_streams"] {
            #expect(text.contains("# HELP \(family) "))
            #expect(text.contains("# TYPE \(family) "))
        }
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"switchyard_requests_total{model="smollm2",route="/v1/chat/completions",status="200"} 2"#))
        #expect(lines.contains(#"switchyard_tokens_total{model="smollm2",direction="prompt"} 10"#))
        #expect(lines.contains(#"switchyard_tokens_total{model="smollm2",direction="completion"} 4"#))
        #expect(lines.contains(#"switchyard_request_duration_seconds_bucket{model="smollm2",le="+Inf"} 1"#))
        #expect(lines.contains(#"switchyard_time_to_first_token_seconds_bucket{model="smollm2",le="0.025"} 1"#))
        // 3 tokens after the first in 0.28 s: 10.7 tokens/s, in the bucket up to 20 and not in the one up to 10.
        #expect(lines.contains(#"switchyard_generation_tokens_per_second_bucket{model="smollm2",le="10"} 0"#))
        #expect(lines.contains(#"switchyard_generation_tokens_per_second_bucket{model="smollm2",le="20"} 1"#))
        #expect(lines.contains("switchyard_rate_limited_total 1"))
        #expect(lines.contains("switchyard_batch_preemptions_total 3"))
        #expect(lines.contains(#"switchyard_upstream_errors_total{provider="upstream-a"} 1"#))
        #expect(lines.contains(#"switchyard_queue_depth{model="smollm2"} 2"#))
        #expect(lines.contains(#"switchyard_circuit_open{deployment="upstream-a/smollm2"} 1"#))
        #expect(lines.contains(#"switchyard_streams{state="running"} 3"#))
        #expect(lines.contains(#"switchyard_streams{state="unattended"} 1"#))
    }

    @Test func routesAreBounded() {
        #expect(PrometheusMiddleware<GatewayContext>.route("/v1/chat/completions") == "/v1/chat/completions")
        #expect(PrometheusMiddleware<GatewayContext>.route("/v1/models/anything") == "/v1/models/{id}")
        #expect(PrometheusMiddleware<GatewayContext>.route("/random/\(Int.random(in: 0..<1000))") == "other")
    }
}
