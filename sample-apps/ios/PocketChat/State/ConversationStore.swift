import Foundation
import PocketLM

/// One row of the conversation list. `problem` says why a damaged file cannot be opened.
public struct ConversationSummary: Equatable, Identifiable, Sendable {
    public let id: String
    public let title: String
    public let messages: Int
    public let savedAt: Date
    public let problem: String?
}

/// The saved conversations: one session file per conversation in `directory`
/// (`<id>.plmsession`, written by `Conversation.save(to:)`), listed newest first.
public struct ConversationStore: Sendable {
    public let directory: URL
    private static let suffix = ".plmsession"
    private static let last = "last-opened"

    public init(directory: URL) {
        self.directory = directory
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The file of conversation `id`.
    public func file(_ id: String) -> URL { directory.appendingPathComponent(id + Self.suffix) }

    /// A fresh id, sortable by creation time.
    public func newId() -> String { "chat-\(Int(Date().timeIntervalSince1970 * 1000))-\(Int.random(in: 1000...9999))" }

    /// Every saved conversation, newest first; a damaged file is listed with its problem.
    public func list() async -> [ConversationSummary] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var rows: [ConversationSummary] = []
        for name in names where name.hasSuffix(Self.suffix) {
            let id = String(name.dropLast(Self.suffix.count))
            do {
                let summary = try await Conversation.summary(of: file(id))
                let first = summary.messages.first { $0.role == .user }?.content ?? ""
                rows.append(ConversationSummary(
                    id: id, title: Self.title(first), messages: summary.messages.count,
                    savedAt: Date(timeIntervalSince1970: TimeInterval(summary.savedAt)), problem: nil))
            } catch {
                let attributes = try? FileManager.default.attributesOfItem(atPath: file(id).path)
                let modified = attributes?[.modificationDate] as? Date
                rows.append(ConversationSummary(id: id, title: "Unreadable conversation", messages: 0, savedAt: modified ?? Date(), problem: "\(error)"))
            }
        }
        return rows.sorted { $0.savedAt > $1.savedAt }
    }

    /// Remembers the model and conversation on screen, for ``lastOpened()``
    /// after the app restarts. A model beside the store's directory is kept
    /// relative to it: iOS may move the app's container on an update.
    public func rememberOpened(modelPath: String, id: String) {
        let base = directory.deletingLastPathComponent().path + "/"
        let path = modelPath.hasPrefix(base) ? String(modelPath.dropFirst(base.count)) : modelPath
        try? "\(path)\n\(id)\n".write(to: directory.appendingPathComponent(Self.last), atomically: true, encoding: .utf8)
    }

    /// The model path and conversation id on screen when the app last ran, or nil.
    public func lastOpened() -> (modelPath: String, id: String)? {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(Self.last), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 2, !lines[0].isEmpty, !lines[1].isEmpty else { return nil }
        let path = lines[0].hasPrefix("/") ? lines[0] : directory.deletingLastPathComponent().appendingPathComponent(lines[0]).path
        return (path, lines[1])
    }

    /// Deletes conversation `id`.
    @discardableResult
    public func delete(_ id: String) -> Bool { (try? FileManager.default.removeItem(at: file(id))) != nil }

    private static func title(_ text: String) -> String {
        let line = text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if line.isEmpty { return "New conversation" }
        return line.count > 48 ? String(line.prefix(47)) + "…" : line
    }
}
