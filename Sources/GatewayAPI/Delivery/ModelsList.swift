import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore

/// GET /v1/models: the models of the providers configured for the key's project, OpenAI's list format.
enum ModelsList {
    static func write(store: any RequestStore, key: AuthenticatedKey, outcome: inout RequestOutcome, writer: any ResponseWriter) async throws {
        var data: [JSON] = []
        for settings in try store.providers(projectID: key.project.id) {
            guard let adapter = ProviderRegistry.adapter(for: settings.provider) else { continue }
            for model in adapter.knownModels {
                data.append([
                    "id": .string(model),
                    "object": "model",
                    "created": .int(Int64(settings.updatedAt.timeIntervalSince1970)),
                    "owned_by": .string(settings.provider.rawValue),
                ])
            }
        }
        let body: JSON = ["object": "list", "data": .array(data)]
        try await writer.writeHead(status: 200, headers: outcome.headers())
        try await writer.writeBody(body.serialized(), flush: false)
        outcome.status = 200
    }
}
