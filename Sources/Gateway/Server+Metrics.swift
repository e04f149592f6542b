import Foundation
import Hummingbird
import Providers
import Routing

extension Server {
    /// GET /metrics: the exposition, with the gauges read now from the model host and the router's breakers.
    static func prometheusMetrics(_ backend: Backend) async throws -> Response {
        var gauges = PrometheusMetrics.Gauges()
        let loaded = await backend.models.loaded()
        let seen = Set(loaded.map(\.name))
        for w in loaded {
            gauges.models.append(.init(name: w.name, loaded: true, queueDepth: w.queueLength, memoryBytes: w.memoryBytes))
        }
        for e in await backend.models.list() where !seen.contains(e.name) {
            gauges.models.append(.init(name: e.name, loaded: false, queueDepth: 0, memoryBytes: 0))
        }
        gauges.streams = backend.streams.counts()
        if let router = backend.router {
            let keys = Set(router.routes.values.flatMap { $0.deployments.map(\.key) })
            for key in keys {
                let open = if case .open = router.circuit(key) { true } else { false }
                gauges.circuits.append((key.description, open))
            }
        }
        var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: backend.prometheus.render(gauges))))
        response.headers[.contentType] = PrometheusWriter.contentType
        return response
    }
}
