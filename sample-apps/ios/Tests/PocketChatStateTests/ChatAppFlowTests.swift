import Foundation
import PocketChatState
import PocketLM
import PocketLMTestSupport
import XCTest


/// The sample app's whole path through its view models on the real engine, as
/// the SwiftUI screens drive them: download the model from a loopback server
/// (pause, resume) → load → chat → stop mid-answer → save → drop everything (an
/// app kill) → restore with the cache → continue → memory warning → reload.
/// The view models live on the main actor, so each test runs its body there.
final class ChatAppFlowTests: XCTestCase {
    func testDownloadChatStopKillRestoreMemoryWarningAndReload() async throws {
        try await Self.inDirectory { try await Self.downloadChatStopKillRestoreMemoryWarningAndReload($0) }
    }

    func testACancelledDownloadLeavesNothing() async throws {
        try await Self.inDirectory { try await Self.aCancelledDownloadLeavesNothing($0) }
    }

    func testRoutedToACloudOnLoopbackWithBadgeRedactionAndKey() async throws {
        try await Self.inDirectory { try await Self.routedToACloudOnLoopbackWithBadgeRedactionAndKey($0) }
    }

    func testSettingsPersistAndTheCloudKeyStaysOutOfTheFile() async throws {
        try await Self.inDirectory { try Self.settingsPersistAndTheCloudKeyStaysOutOfTheFile($0) }
    }

    /// Runs `body` on the main actor with a fresh directory, removed afterwards (it may hold a copy of the model).
    @MainActor
    private static func inDirectory(_ body: @MainActor (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pocketchat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    /// The built-in catalog's entry for the test model, served from `url`.
    private static func entry(url: String, size: Int64, sha256: String?) throws -> CatalogEntry {
        var entry = try XCTUnwrap(ModelCatalog.builtin()["qwen2.5-0.5b-instruct-q4_k_m"])
        entry.id = "qwen-0.5b"
        entry.file = CatalogFile(url: url, fileName: "qwen.gguf", size: size, sha256: sha256)
        return entry
    }

    /// Polls `condition` on the main actor until it holds (the view models update there).
    @MainActor
    private static func until(_ what: String, timeout: TimeInterval = 120, _ condition: () -> Bool) async throws {
        let end = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > end { XCTFail("timed out waiting for \(what)"); throw CancellationError() }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    @MainActor
    private static func downloadChatStopKillRestoreMemoryWarningAndReload(_ directory: URL) async throws {
        let modelPath = try TestModel.path
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: modelPath)))
        let server = RangeServer(body: body, delayMs: 2)
        let catalog = try ModelCatalog(json: #"{"version": 1, "models": []}"#)
        try catalog.add(try entry(url: server.url, size: Int64(body.count), sha256: nil))
        let downloads = try ModelDownloads(directory: directory.appendingPathComponent("models").path)

        // The model screen: fits, downloads, pauses, resumes.
        let models = ModelsModel(catalog: catalog, downloads: downloads, budgetBytes: 1 << 30, contextLength: 1024)
        await models.refresh()
        let row = try XCTUnwrap(models.rows.first)
        XCTAssertTrue(row.fits, row.note ?? "")
        XCTAssertEqual(row.downloadBytes, Int64(body.count))
        XCTAssertEqual(row.state, .available)
        models.download(row.id)
        try await until("the first bytes") {
            if case .downloading(let done, _, _) = models.rows[0].state { return done > 0 }
            return false
        }
        models.pause(row.id)
        guard case .downloading(_, _, true) = models.rows[0].state else { return XCTFail("\(models.rows[0].state)") }
        try await Task.sleep(nanoseconds: 300_000_000)
        guard case .downloading(let settled, _, _) = models.rows[0].state else { return XCTFail("\(models.rows[0].state)") }
        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertEqual(models.rows[0].state, .downloading(downloaded: settled, total: Int64(body.count), paused: true), "paused means no bytes")
        server.delayMs = 0
        models.resume(row.id)
        try await until("the install", timeout: 180) {
            if case .installed = models.rows[0].state { return true }
            return false
        }
        guard case .installed(let path) = models.rows[0].state else { return XCTFail() }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(body))
        await models.refresh()
        XCTAssertEqual(models.rows[0].state, .installed(path: path), "a fresh screen sees it installed")

        // Chat: a streamed answer with its figures, saved as soon as it is done.
        var settings = ChatSettings()
        settings.systemPrompt = "You are a concise assistant."
        settings.temperature = 0
        settings.maxTokens = 48
        settings.contextLength = 1024
        let store = ConversationStore(directory: directory.appendingPathComponent("conversations"))
        let first = ChatModel(store: store, settings: { settings })
        await first.load(path: path)
        guard case .ready = first.model else { return XCTFail("\(first.model)") }
        first.send("Name three primary colours.")
        await first.settle()
        XCTAssertEqual(first.messages.count, 2)
        let stats = try XCTUnwrap(first.messages[1].stats)
        XCTAssertTrue(stats.onDevice && stats.ttftMs > 0 && stats.tokensPerSecond > 0, "\(stats)")
        let id = try XCTUnwrap(first.conversationId)
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.file(id).path), "saved after the answer")

        // Stop mid-answer: what was shown stays, and is saved.
        settings.maxTokens = 400
        await first.newConversation()
        await first.open(id)
        first.send("Write a long story about a lighthouse keeper.")
        try await until("some of the story") { (first.messages.last.map { $0.role == .assistant ? $0.text.count : 0 } ?? 0) > 20 }
        let shown = first.messages.last!.text
        first.stop()
        await first.settle()
        XCTAssertFalse(first.streaming)
        XCTAssertEqual(first.messages.count, 4)
        XCTAssertTrue(first.messages[3].text.hasPrefix(shown), "nothing shown is lost")

        // Regenerate replaces the partial answer; editing replaces the question.
        first.regenerate()
        await first.settle()
        XCTAssertEqual(first.messages.count, 4)
        XCTAssertNotNil(first.messages[3].stats)
        first.editLast("Write one sentence about a lighthouse.")
        await first.settle()
        XCTAssertEqual(first.messages.count, 4)
        XCTAssertEqual(first.messages[2].text, "Write one sentence about a lighthouse.")
        let beforeKill = first.messages.map(\.text)

        // An app kill: nothing survives but the files.
        first.close()
        let listed = await store.list()
        XCTAssertEqual(listed.map(\.id), [id])
        XCTAssertEqual(listed.first?.title, "Name three primary colours.")

        // The app starts again and reopens what was on screen.
        let second = ChatModel(store: store, settings: { settings })
        XCTAssertFalse(second.canSend)
        await second.resumeLast()
        XCTAssertEqual(second.conversationId, id)
        XCTAssertEqual(second.modelPath, path)
        XCTAssertTrue(second.canSend)
        XCTAssertNil(second.error)
        XCTAssertEqual(second.messages.map(\.text), beforeKill)
        let cached = try XCTUnwrap(second.restoredCachedTokens)
        XCTAssertGreaterThan(cached, 50, "the KV cache came back")
        second.send("Thanks.")
        await second.settle()
        XCTAssertEqual(second.messages.count, 6)
        let reused = try XCTUnwrap(second.messages[5].stats).promptTokensReused
        XCTAssertGreaterThanOrEqual(reused, cached - 2, "only the new turn was evaluated")

        // A memory warning unloads; returning reloads and restores from the file.
        await second.onMemoryWarning()
        XCTAssertEqual(second.model, .unloaded)
        XCTAssertEqual(second.messages.count, 6, "the screen keeps the conversation")
        let continued = second.messages.map(\.text)
        await second.onForeground()
        guard case .ready = second.model else { return XCTFail("\(second.model)") }
        XCTAssertEqual(second.messages.map(\.text), continued)
        XCTAssertGreaterThan(second.restoredCachedTokens ?? 0, cached)
        second.send("Bye.")
        await second.settle()
        XCTAssertEqual(second.messages.count, 8)
        XCTAssertGreaterThan(second.messages[7].stats?.promptTokensReused ?? 0, cached)
        second.close()
    }

    @MainActor
    private static func routedToACloudOnLoopbackWithBadgeRedactionAndKey(_ directory: URL) async throws {
        let cloud = CloudServer(answer: ["Hello", " from", " the cloud."])
        var settings = ChatSettings()
        settings.temperature = 0
        settings.maxTokens = 16
        settings.contextLength = 1024
        settings.routing = .cloudOnly
        settings.cloudEndpoint = cloud.url
        settings.cloudModel = "big-model"
        settings.redaction = true
        let store = ConversationStore(directory: directory.appendingPathComponent("conversations"))
        let chat = ChatModel(store: store, settings: { settings }, cloudKey: { "sk-test-key" })
        await chat.load(path: try TestModel.path)
        chat.send("Write to jane.doe@example.com or call +44 20 7946 0958 about the party.")
        await chat.settle()
        XCTAssertNil(chat.error)
        XCTAssertEqual(chat.messages.map(\.text).last, "Hello from the cloud.")
        let stats = try XCTUnwrap(chat.messages.last?.stats)
        XCTAssertFalse(stats.onDevice, "the cloud badge")
        XCTAssertGreaterThan(stats.ttftMs, 0)
        let request = try XCTUnwrap(cloud.requests.first)
        XCTAssertTrue(request.body.contains("[email]") && request.body.contains("[phone]"), request.body)
        XCTAssertFalse(request.body.contains("jane.doe@example.com") || request.body.contains("7946"), "nothing personal left the phone")
        XCTAssertTrue(request.body.contains("big-model"))
        XCTAssertEqual(request.authorization, "Bearer sk-test-key")
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.file(try XCTUnwrap(chat.conversationId)).path), "saved like any conversation")

        // Back to the device for new conversations: the device badge.
        settings.routing = .deviceOnly
        await chat.newConversation()
        chat.send("Say hi.")
        await chat.settle()
        XCTAssertEqual(chat.messages.last?.stats?.onDevice, true)
        XCTAssertEqual(cloud.requests.count, 1, "nothing more went to the cloud")

        // A cloud that cannot be reached: the typed text comes back for the input, the history is as it was.
        settings.routing = .cloudOnly
        settings.cloudEndpoint = "http://127.0.0.1:9/v1"
        await chat.newConversation()
        XCTAssertTrue(chat.send("Is anyone there?"))
        await chat.settle()
        XCTAssertNotNil(chat.error)
        XCTAssertEqual(chat.unsent, "Is anyone there?")
        XCTAssertTrue(chat.messages.isEmpty, "\(chat.messages)")
        XCTAssertEqual(chat.takeUnsent(), "Is anyone there?")
        XCTAssertNil(chat.unsent)

        // A damaged conversation file opens as a new conversation, and is never saved over.
        let damaged = store.file("chat-damaged")
        try Data(repeating: 7, count: 64).write(to: damaged)
        settings.routing = .deviceOnly
        await chat.open("chat-damaged")
        XCTAssertNotEqual(chat.conversationId, "chat-damaged")
        XCTAssertTrue(chat.error?.contains("could not be opened") ?? false, chat.error ?? "")
        XCTAssertTrue(chat.send("Say hi."))
        await chat.settle()
        XCTAssertEqual(try Data(contentsOf: damaged), Data(repeating: 7, count: 64), "the damaged file is untouched")
        chat.close()
    }

    @MainActor
    private static func aCancelledDownloadLeavesNothing(_ directory: URL) async throws {
        let body = [UInt8](repeating: 7, count: 4 << 20)
        let server = RangeServer(body: body, delayMs: 5)
        let catalog = try ModelCatalog(json: #"{"version": 1, "models": []}"#)
        try catalog.add(try entry(url: server.url, size: Int64(body.count), sha256: nil))
        let downloads = try ModelDownloads(directory: directory.appendingPathComponent("models").path)
        let models = ModelsModel(catalog: catalog, downloads: downloads, budgetBytes: 1 << 30, contextLength: 1024)
        await models.refresh()
        models.download("qwen-0.5b")
        try await until("the first bytes") {
            if case .downloading(let done, _, _) = models.rows[0].state { return done > 0 }
            return false
        }
        await models.cancel("qwen-0.5b")
        XCTAssertEqual(models.rows[0].state, .available)
        XCTAssertEqual(downloads.usedBytes, 0, "the part is gone")
        let installed = try await downloads.installed()
        XCTAssertTrue(installed.isEmpty)
    }

    @MainActor
    private static func settingsPersistAndTheCloudKeyStaysOutOfTheFile(_ directory: URL) throws {
        final class Secrets: SecretStore, @unchecked Sendable {
            var values: [String: String] = [:]
            func get(_ name: String) -> String? { values[name] }
            func put(_ name: String, _ value: String) { values[name] = value }
            func remove(_ name: String) { values[name] = nil }
        }
        let secrets = Secrets()
        let file = directory.appendingPathComponent("settings.json")
        let first = SettingsModel(file: file, secrets: secrets)
        XCTAssertEqual(first.settings, ChatSettings(), "defaults without a file")
        first.settings.systemPrompt = "Be terse."
        first.settings.routing = .preferDevice
        first.settings.cloudEndpoint = "https://api.example.com/v1"
        first.settings.redaction = false
        first.setCloudKey("sk-secret-123")
        XCTAssertTrue(first.hasCloudKey)

        let second = SettingsModel(file: file, secrets: secrets)
        XCTAssertEqual(second.settings, first.settings)
        XCTAssertEqual(second.cloudKey(), "sk-secret-123")
        XCTAssertFalse(try String(contentsOf: file, encoding: .utf8).contains("sk-secret"), "the key is not in the settings file")
        second.setCloudKey("")
        XCTAssertFalse(second.hasCloudKey)

        try "{ not json".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(SettingsModel(file: file, secrets: secrets).settings, ChatSettings(), "a damaged file gives the defaults")
    }
}
