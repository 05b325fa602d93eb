import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// What every per-provider adapter suite needs: a client request with the gateway's id and
/// clock fixed, the provider body the adapter builds for it, and the 400 it refuses it with.
protocol AdapterSuite {
    associatedtype Adapter: ProviderAdapter
    var adapter: Adapter { get }
    var settings: ProviderSettings { get }
}

extension AdapterSuite {
    func chat(_ json: String) throws -> ChatRequest {
        var request = try ChatRequest.parse(Array(json.utf8))
        request.responseID = "chatcmpl-test"
        request.created = 1_767_225_600
        return request
    }

    func upstreamBody(_ json: String) throws -> JSON {
        try JSON.parse(adapter.makeChatRequest(chat(json), settings: settings).body)
    }

    /// The error the adapter refuses the request with; nil if it translates it.
    func requestError(_ json: String) throws -> GatewayError? {
        let request = try chat(json)
        let result = Result { () throws(GatewayError) -> UpstreamRequest in try adapter.makeChatRequest(request, settings: settings) }
        guard case .failure(let error) = result else { return nil }
        return error
    }
}
