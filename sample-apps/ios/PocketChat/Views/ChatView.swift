import PocketLM
import SwiftUI
import UIKit

/// The chat: streamed answers with their figures, stop, regenerate, edit the
/// last message, saved conversations (a sheet), and the message field.
struct ChatView: View {
    @ObservedObject var chat: ChatModel
    let store: ConversationStore
    /// What the user is typing: kept across tabs and restored with the scene
    /// (after iOS ends the app in the background); cleared only when
    /// ``ChatModel/send(_:)`` takes it.
    @SceneStorage("chat.draft") private var draft = ""
    @State private var showingConversations = false
    @State private var editing = false
    @State private var editText = ""
    @State private var showingError = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 0) {
                if case .loading(let fraction) = chat.model {
                    ProgressView(value: fraction)
                }
                if let tokens = chat.restoredCachedTokens {
                    Text("Restored: \(tokens) tokens came back from the saved cache")
                        .font(.caption2).foregroundStyle(.secondary).padding(.vertical, 4)
                }
                if chat.messages.isEmpty && !chat.streaming {
                    emptyState.frame(maxHeight: .infinity)
                } else {
                    messages
                }
                Divider()
                composer
            }
            .toolbar { toolbar }
            .navigationBarTitleDisplayMode(.inline)
            .sheet(isPresented: $showingConversations) {
                ConversationsView(chat: chat, store: store)
            }
            // ChatModel.error is "show once": an alert per error, cleared when dismissed.
            .onChange(of: chat.error, initial: true) { _, error in showingError = error != nil }
            // Text whose request failed before it joined the conversation comes back to the input.
            .onChange(of: chat.unsent) { _, _ in
                if let text = chat.takeUnsent(), draft.isEmpty { draft = text }
            }
            .alert("Something went wrong", isPresented: $showingError, presenting: chat.error) { _ in
                Button("OK") { chat.dismissError() }
            } message: { error in
                Text(error)
            }
        }
    }

    // MARK: Messages

    private var messages: some View {
        ScrollViewReader { proxy in
            ScrollView {
                LazyVStack(spacing: 10) {
                    ForEach(Array(chat.messages.enumerated()), id: \.offset) { index, message in
                        Bubble(message: message, streaming: chat.streaming && index == chat.messages.count - 1 && message.role == .assistant)
                    }
                    if chat.streaming && chat.messages.last?.role != .assistant {
                        ProgressView().frame(maxWidth: .infinity, alignment: .leading)
                    }
                    if !chat.streaming && !chat.messages.isEmpty {
                        answerActions
                    }
                    Color.clear.frame(height: 1).id(Self.bottom)
                }
                .padding(12)
            }
            .scrollDismissesKeyboard(.interactively)
            .onAppear { proxy.scrollTo(Self.bottom, anchor: .bottom) }
            // Follows the answer as it streams in.
            .onChange(of: chat.messages.count) { proxy.scrollTo(Self.bottom, anchor: .bottom) }
            .onChange(of: chat.messages.last?.text) { proxy.scrollTo(Self.bottom, anchor: .bottom) }
            .onChange(of: chat.streaming) { proxy.scrollTo(Self.bottom, anchor: .bottom) }
        }
        .alert("Edit last message", isPresented: $editing) {
            TextField("Message", text: $editText)
            Button("Send") {
                let text = editText.trimmingCharacters(in: .whitespacesAndNewlines)
                if chat.canSend && !text.isEmpty { chat.editLast(text) }
            }
            Button("Cancel", role: .cancel) {}
        }
    }

    private static let bottom = "bottom"

    /// Regenerate and edit, under the last message once the answer is done.
    private var answerActions: some View {
        HStack {
            Button("Regenerate", systemImage: "arrow.clockwise") { chat.regenerate() }
            Button("Edit last", systemImage: "pencil") {
                editText = lastUserText ?? ""
                editing = true
            }
            .disabled(lastUserText == nil)
            Spacer()
        }
        .buttonStyle(.bordered)
        .controlSize(.small)
        .disabled(!chat.canSend)
    }

    private var lastUserText: String? {
        chat.messages.last { $0.role == .user }?.text
    }

    private var emptyState: some View {
        let hint = chat.model.hint
        return ContentUnavailableView(hint.title, systemImage: "bubble.left.and.bubble.right", description: Text(hint.detail))
    }

    // MARK: Input

    private var composer: some View {
        HStack(alignment: .bottom, spacing: 8) {
            TextField(chat.model.isReady ? "Message" : "No model loaded", text: $draft, axis: .vertical)
                .lineLimit(1...6)
                .textFieldStyle(.roundedBorder)
            if chat.streaming {
                Button { chat.stop() } label: {
                    Image(systemName: "stop.circle.fill").font(.title)
                }
                .accessibilityLabel("Stop")
            } else {
                Button { send() } label: {
                    Image(systemName: "arrow.up.circle.fill").font(.title)
                }
                .accessibilityLabel("Send")
                .disabled(!chat.canSend || trimmedDraft.isEmpty)
            }
        }
        .padding(8)
    }

    private var trimmedDraft: String {
        draft.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func send() {
        let text = trimmedDraft
        guard !text.isEmpty, chat.send(text) else { return } // otherwise the draft stays as typed
        draft = ""
    }

    // MARK: Bars

    @ToolbarContentBuilder private var toolbar: some ToolbarContent {
        ToolbarItem(placement: .topBarLeading) {
            Button("Conversations", systemImage: "list.bullet") { showingConversations = true }
        }
        ToolbarItem(placement: .principal) {
            VStack(spacing: 0) {
                Text("Chat").font(.headline)
                Text(chat.model.label).font(.caption).foregroundStyle(.secondary).lineLimit(1)
            }
        }
        ToolbarItemGroup(placement: .topBarTrailing) {
            if chat.model == .unloaded {
                Button("Reload") { Task { await chat.onForeground() } }
            }
            Button("New conversation", systemImage: "square.and.pencil") {
                Task { await chat.newConversation() }
            }
            .disabled(!chat.model.isReady)
        }
    }
}

/// One message; an answer gets its figures underneath.
private struct Bubble: View {
    let message: UIMessage
    let streaming: Bool

    var body: some View {
        let mine = message.role == .user
        VStack(alignment: mine ? .trailing : .leading, spacing: 4) {
            Text(streaming ? message.text + " ▍" : message.text)
                .padding(.horizontal, 12)
                .padding(.vertical, 8)
                .background(mine ? Color.accentColor.opacity(0.2) : Color(uiColor: .secondarySystemBackground),
                            in: RoundedRectangle(cornerRadius: 16))
                .contextMenu {
                    Button("Copy", systemImage: "doc.on.doc") { UIPasteboard.general.string = message.text }
                }
            if let stats = message.stats {
                StatsLine(stats: stats)
            }
        }
        .frame(maxWidth: .infinity, alignment: mine ? .trailing : .leading)
        .padding(mine ? .leading : .trailing, 40)
    }
}

/// Time to first token, decode speed, reused prompt tokens and where it ran.
private struct StatsLine: View {
    let stats: AnswerStats

    var body: some View {
        HStack(spacing: 6) {
            Text(stats.onDevice ? "device" : "cloud")
                .font(.caption2.bold())
                .padding(.horizontal, 6)
                .padding(.vertical, 1)
                .background(stats.onDevice ? Color.green.opacity(0.25) : Color.blue.opacity(0.25), in: Capsule())
            Text(figures)
                .font(.caption2)
                .monospacedDigit()
                .foregroundStyle(.secondary)
        }
    }

    private var figures: String {
        var parts = [
            "TTFT \(Int(stats.ttftMs.rounded())) ms",
            "\(stats.tokensPerSecond.formatted(.number.precision(.fractionLength(1)))) tok/s",
            "\(stats.promptTokensReused) cached",
        ]
        // A natural end goes unsaid; anything else (max tokens, cancelled, …) is shown.
        if stats.stopReason != "eos" && stats.stopReason != "stopSequence" { parts.append(stats.stopReason) }
        return parts.joined(separator: " · ")
    }
}

/// The saved conversations, newest first (``ConversationStore/list()``).
private struct ConversationsView: View {
    @ObservedObject var chat: ChatModel
    let store: ConversationStore
    @Environment(\.dismiss) private var dismiss
    @State private var rows: [ConversationSummary] = []

    var body: some View {
        NavigationStack {
            List {
                if !chat.model.isReady {
                    Text("Load a model (Models tab) to open a conversation.")
                        .font(.footnote).foregroundStyle(.secondary)
                }
                ForEach(rows) { row in
                    Button {
                        Task { await chat.open(row.id) }
                        dismiss()
                    } label: {
                        HStack {
                            VStack(alignment: .leading, spacing: 2) {
                                Text(row.title).lineLimit(1)
                                Text(row.problem ?? "\(row.messages) messages · \(row.savedAt.formatted(.relative(presentation: .named)))")
                                    .font(.caption)
                                    .foregroundStyle(row.problem == nil ? Color.secondary : Color.red)
                                    .lineLimit(2)
                            }
                            Spacer()
                            if row.id == chat.conversationId {
                                Image(systemName: "checkmark").foregroundStyle(.tint)
                            }
                        }
                    }
                    .disabled(!chat.model.isReady || row.problem != nil)
                    .swipeActions {
                        if row.id != chat.conversationId {
                            Button("Delete", role: .destructive) {
                                store.delete(row.id)
                                rows.removeAll { $0.id == row.id }
                            }
                        }
                    }
                }
            }
            .overlay {
                if rows.isEmpty {
                    ContentUnavailableView("No saved conversations", systemImage: "tray")
                }
            }
            .navigationTitle("Conversations")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                ToolbarItem(placement: .cancellationAction) {
                    Button("Done") { dismiss() }
                }
                ToolbarItem(placement: .primaryAction) {
                    Button("New conversation", systemImage: "square.and.pencil") {
                        Task { await chat.newConversation() }
                        dismiss()
                    }
                    .disabled(!chat.model.isReady)
                }
            }
            .task { rows = await store.list() }
        }
    }
}

private extension ModelStatus {
    var isReady: Bool {
        if case .ready = self { return true }
        return false
    }

    var label: String {
        switch self {
        case .none: "No model loaded"
        case .loading(let fraction): "Loading… \(Int(fraction * 100))%"
        case .ready(let name): name
        case .unloaded: "Unloaded to free memory"
        case .failed: "Load failed"
        }
    }

    /// What the empty chat says.
    var hint: (title: String, detail: String) {
        switch self {
        case .none: ("No model loaded", "Download a model on the Models tab and tap Use.")
        case .loading: ("Loading the model…", "")
        case .ready: ("Ask anything", "It runs on this phone.")
        case .unloaded: ("Model unloaded", "It was unloaded to free memory. Tap Reload.")
        case .failed(let message): ("The model did not load", message)
        }
    }
}
