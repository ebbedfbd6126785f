import Foundation
#if canImport(Combine)
import Combine
#endif

/// Where a request is answered: only on the device; on the device, escalating
/// to the cloud endpoint when the device cannot answer (model unavailable, over
/// the memory budget, prompt too long); or always in the cloud. Applies to
/// conversations opened after the change.
public enum RoutingPolicy: String, Codable, CaseIterable, Sendable {
    case deviceOnly, preferDevice, cloudOnly
}

/// What the settings screen edits. Everything but the cloud key, which lives in a ``SecretStore``.
public struct ChatSettings: Codable, Equatable, Sendable {
    public var systemPrompt = "You are a helpful assistant. Answer briefly."
    public var temperature: Float = 0.7
    public var maxTokens: Int32 = 512
    public var contextLength: Int32 = 4096
    /// The memory the model may use; the planner picks context and KV type to fit.
    public var memoryBudgetMB: Int64 = 2048
    public var routing = RoutingPolicy.deviceOnly
    public var cloudEndpoint = ""
    public var cloudModel = ""
    /// Redact e-mail addresses and phone numbers before anything leaves the phone (``redactPersonalData(_:)``).
    public var redaction = true

    public init() {}

    /// Reads what the file has and keeps the default for the rest, so a setting
    /// added in an app update does not reset the others.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ChatSettings()
        systemPrompt = try c.decodeIfPresent(String.self, forKey: .systemPrompt) ?? d.systemPrompt
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature
        maxTokens = try c.decodeIfPresent(Int32.self, forKey: .maxTokens) ?? d.maxTokens
        contextLength = try c.decodeIfPresent(Int32.self, forKey: .contextLength) ?? d.contextLength
        memoryBudgetMB = try c.decodeIfPresent(Int64.self, forKey: .memoryBudgetMB) ?? d.memoryBudgetMB
        routing = try c.decodeIfPresent(RoutingPolicy.self, forKey: .routing) ?? d.routing
        cloudEndpoint = try c.decodeIfPresent(String.self, forKey: .cloudEndpoint) ?? d.cloudEndpoint
        cloudModel = try c.decodeIfPresent(String.self, forKey: .cloudModel) ?? d.cloudModel
        redaction = try c.decodeIfPresent(Bool.self, forKey: .redaction) ?? d.redaction
    }
}

/// Secrets kept outside the settings file: the iOS Keychain in the app
/// (`KeychainSecretStore`), a dictionary in tests.
public protocol SecretStore: Sendable {
    /// The secret stored under `name`, or nil.
    func get(_ name: String) -> String?
    /// Stores `value` under `name`, replacing any earlier one.
    func put(_ name: String, _ value: String)
    /// Forgets `name`.
    func remove(_ name: String)
}

/// The settings screen's state: ``settings`` saved as JSON to `file` on every
/// change, the cloud key in a ``SecretStore``. A missing or unreadable file
/// gives the defaults (an app update must never crash on start).
@MainActor
public final class SettingsModel: ObservableObject {
    /// The current settings; every change is saved.
    @Published public var settings: ChatSettings {
        didSet { save() }
    }

    private let file: URL
    private let secrets: SecretStore
    private static let cloudKey = "cloud-api-key"

    public init(file: URL, secrets: SecretStore) {
        self.file = file
        self.secrets = secrets
        settings = (try? JSONDecoder().decode(ChatSettings.self, from: Data(contentsOf: file))) ?? ChatSettings()
    }

    /// Whether a cloud key is stored (the key itself is never put in UI state).
    public var hasCloudKey: Bool { secrets.get(Self.cloudKey) != nil }

    /// Stores the cloud API key (or forgets it when `key` is blank).
    public func setCloudKey(_ key: String) {
        if key.trimmingCharacters(in: .whitespaces).isEmpty {
            secrets.remove(Self.cloudKey)
        } else {
            secrets.put(Self.cloudKey, key)
        }
    }

    /// The cloud API key, for the request that needs it.
    public func cloudKey() -> String? { secrets.get(Self.cloudKey) }

    private func save() {
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? JSONEncoder().encode(settings).write(to: file, options: .atomic)
    }
}
