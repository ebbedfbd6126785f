import PocketLM
import SwiftUI
import UIKit

/// Wires the view models (PocketChat/State/) to the app's files and lifecycle.
/// Everything the app does is in those view models; the views only bind.
@main
struct PocketChatApp: App {
    @StateObject private var chat: ChatModel
    @StateObject private var models: ModelsModel
    @StateObject private var settings: SettingsModel
    private let conversations: ConversationStore
    /// The most this phone should give a model (see ``deviceBudget()``).
    private let deviceBudgetBytes: Int64
    @Environment(\.scenePhase) private var scenePhase

    init() {
        let support = URL.applicationSupportDirectory
        let modelsDirectory = support.appendingPathComponent("models", isDirectory: true)
        Self.excludeFromBackup(modelsDirectory) // gigabytes that can be downloaded again
        let downloads: ModelDownloads
        do {
            downloads = try ModelDownloads(directory: modelsDirectory.path)
        } catch {
            fatalError("Cannot use \(modelsDirectory.path) for models: \(error)")
        }

        let settings = SettingsModel(file: support.appendingPathComponent("settings.json"), secrets: KeychainSecretStore())
        let conversations = ConversationStore(directory: support.appendingPathComponent("conversations", isDirectory: true))
        // Read when a model loads or a conversation opens, so changes apply to the next one.
        let chat = ChatModel(store: conversations, settings: { settings.settings }, cloudKey: { settings.cloudKey() })
        let device = Self.deviceBudget()
        // The Models tab judges fit with what a load will get: the settings' budget
        // capped by the phone, at the settings' context length (as they are at launch).
        let models = ModelsModel(
            catalog: ModelCatalog.builtin(),
            downloads: downloads,
            budgetBytes: min(device, settings.settings.memoryBudgetMB << 20),
            contextLength: settings.settings.contextLength)

        _chat = StateObject(wrappedValue: chat)
        _models = StateObject(wrappedValue: models)
        _settings = StateObject(wrappedValue: settings)
        self.conversations = conversations
        deviceBudgetBytes = device
    }

    var body: some Scene {
        WindowGroup {
            RootView(chat: chat, models: models, settings: settings, conversations: conversations, deviceBudgetBytes: deviceBudgetBytes)
                .task { await chat.resumeLast() } // the model and conversation open when the app last ran
                .onReceive(NotificationCenter.default.publisher(for: UIApplication.didReceiveMemoryWarningNotification)) { _ in
                    Task { await chat.onMemoryWarning() }
                }
        }
        .onChange(of: scenePhase) { _, phase in
            switch phase {
            case .background:
                // Stop generating (no GPU work in the background) and save; ask for
                // the few seconds the save may need.
                var task = UIBackgroundTaskIdentifier.invalid
                // Out of time: end the task (iOS kills an app that does not); the last save stays.
                task = UIApplication.shared.beginBackgroundTask(withName: "Save conversation") {
                    UIApplication.shared.endBackgroundTask(task)
                    task = .invalid
                }
                Task {
                    await chat.onBackground()
                    if task != .invalid { UIApplication.shared.endBackgroundTask(task) }
                }
            case .active:
                Task { await chat.onForeground() } // reloads a model unloaded by a memory warning
            default:
                break
            }
        }
    }

    /// 40% of the phone's RAM, capped by what iOS lets this process still
    /// allocate (`os_proc_available_memory()`, larger with the Increased Memory
    /// Limit entitlement; 0 where there is no limit, e.g. the simulator).
    private static func deviceBudget() -> Int64 {
        let share = Int64(clamping: ProcessInfo.processInfo.physicalMemory) / 5 * 2
        let available = ModelCatalog.availableMemory()
        return available > 0 ? min(share, available) : share
    }

    private static func excludeFromBackup(_ directory: URL) {
        var url = directory
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try? url.setResourceValues(values)
    }
}

/// The three tabs. Using a model on the Models tab switches to the chat.
struct RootView: View {
    enum AppTab: String { case chat, models, settings }

    // Not observed here: each tab observes what it shows.
    let chat: ChatModel
    let models: ModelsModel
    let settings: SettingsModel
    let conversations: ConversationStore
    let deviceBudgetBytes: Int64
    @SceneStorage("tab") private var tab = AppTab.chat

    var body: some View {
        TabView(selection: $tab) {
            ChatView(chat: chat, store: conversations)
                .tabItem { Label("Chat", systemImage: "bubble.left.and.bubble.right") }
                .tag(AppTab.chat)
            ModelsView(models: models, chat: chat) { path in
                tab = .chat
                Task { await chat.load(path: path) }
            }
            .tabItem { Label("Models", systemImage: "square.stack.3d.down.right") }
            .tag(AppTab.models)
            SettingsView(settings: settings, deviceBudgetBytes: deviceBudgetBytes)
                .tabItem { Label("Settings", systemImage: "gearshape") }
                .tag(AppTab.settings)
        }
    }
}
