import SwiftUI

/// Edits ``ChatSettings`` (``SettingsModel`` saves every change) and the cloud
/// key, which goes to the Keychain and is never shown again.
struct SettingsView: View {
    @ObservedObject var settings: SettingsModel
    /// What the app judges this phone can give a model.
    let deviceBudgetBytes: Int64

    /// The key being typed; cleared once stored. Plain @State: never saved with the scene.
    @State private var key = ""
    @State private var hasKey = false
    /// The slider's value while dragging; saved when the drag ends.
    @State private var temperature: Float = ChatSettings().temperature

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    TextField("System prompt", text: $settings.settings.systemPrompt, axis: .vertical)
                        .lineLimit(3...8)
                    VStack(alignment: .leading) {
                        LabeledContent("Temperature", value: Double(temperature).formatted(.number.precision(.fractionLength(2))))
                        Slider(value: $temperature, in: 0...2, step: 0.05) { editing in
                            if !editing { settings.settings.temperature = temperature }
                        }
                    }
                    Stepper("Max tokens: \(settings.settings.maxTokens)", value: $settings.settings.maxTokens, in: 32...8192, step: 32)
                } header: {
                    Text("Answers")
                } footer: {
                    Text("Apply to the next conversation.")
                }

                Section {
                    Stepper("Context: \(settings.settings.contextLength) tokens", value: $settings.settings.contextLength, in: 512...32768, step: 512)
                    Stepper("Memory budget: \(settings.settings.memoryBudgetMB) MB", value: $settings.settings.memoryBudgetMB, in: 256...16384, step: 256)
                } header: {
                    Text("Model")
                } footer: {
                    Text("Apply to the next model load. This phone: about \(deviceBudgetBytes >> 20) MB. The Models tab judges fit with the values the app started with.")
                }

                Section {
                    Picker("Policy", selection: $settings.settings.routing) {
                        ForEach(RoutingPolicy.allCases, id: \.self) { policy in
                            Text(policy.label).tag(policy)
                        }
                    }
                    TextField("Cloud endpoint", text: $settings.settings.cloudEndpoint)
                        .keyboardType(.URL)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    TextField("Cloud model", text: $settings.settings.cloudModel)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                } header: {
                    Text("Routing")
                } footer: {
                    Text("Applies to conversations started after a change. With an endpoint, prefer device escalates when the phone cannot answer; e-mail addresses and phone numbers are redacted first when redaction is on.")
                }

                Section {
                    SecureField("Cloud API key", text: $key)
                        .textContentType(.password)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    Button("Save key") {
                        settings.setCloudKey(key)
                        key = ""
                        hasKey = settings.hasCloudKey
                    }
                    .disabled(key.trimmingCharacters(in: .whitespaces).isEmpty)
                    Button("Remove key", role: .destructive) {
                        settings.setCloudKey("")
                        hasKey = settings.hasCloudKey
                    }
                    .disabled(!hasKey)
                } header: {
                    Text("Cloud key")
                } footer: {
                    Text(hasKey ? "A key is stored in the Keychain (this device only)." : "No key stored.")
                }

                Section {
                    Toggle("Redact before sending to the cloud", isOn: $settings.settings.redaction)
                } header: {
                    Text("Privacy")
                } footer: {
                    Text("E-mail addresses, phone numbers and the like are removed before anything leaves the phone.")
                }
            }
            .navigationTitle("Settings")
            .onAppear {
                hasKey = settings.hasCloudKey
                temperature = settings.settings.temperature
            }
        }
    }
}

private extension RoutingPolicy {
    var label: String {
        switch self {
        case .deviceOnly: "On this phone only"
        case .preferDevice: "Phone first, cloud when needed"
        case .cloudOnly: "Cloud only"
        }
    }
}
