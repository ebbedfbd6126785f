package dev.pocketlm.sample.state

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.serialization.Serializable
import kotlinx.serialization.json.Json
import java.io.File

/**
 * Where a request is answered: only on the device; on the device, escalating to the
 * cloud endpoint when the device cannot answer (model unavailable, over the memory
 * budget, prompt too long); or always in the cloud. Applies to conversations opened
 * after the change.
 */
enum class RoutingPolicy { DEVICE_ONLY, PREFER_DEVICE, CLOUD_ONLY }

/** What the settings screen edits. Everything but the cloud key, which lives in a [SecretStore]. */
@Serializable
data class ChatSettings(
    val systemPrompt: String = "You are a helpful assistant. Answer briefly.",
    val temperature: Float = 0.7f,
    val maxTokens: Int = 512,
    val contextLength: Int = 4096,
    /** The memory the model may use; the planner picks context and KV type to fit. */
    val memoryBudgetMb: Int = 2048,
    val routing: RoutingPolicy = RoutingPolicy.DEVICE_ONLY,
    val cloudEndpoint: String = "",
    val cloudModel: String = "",
    /** Redact e-mail addresses and phone numbers before anything leaves the phone ([redact]). */
    val redaction: Boolean = true,
)

/**
 * Secrets kept outside the settings file: the Android Keystore in the app
 * (`KeystoreSecretStore`), the iOS Keychain on iOS, a map in tests.
 */
interface SecretStore {
    /** The secret stored under [name], or null. */
    fun get(name: String): String?

    /** Stores [value] under [name], replacing any earlier one. */
    fun put(name: String, value: String)

    /** Forgets [name]. */
    fun remove(name: String)
}

/**
 * The settings screen's state: [settings] persisted as JSON in [file] on every
 * change, and the cloud key in [secrets]. A missing or unreadable file gives the
 * defaults (an app update must never lose the user to a crash on start).
 */
class SettingsViewModel(private val file: File, private val secrets: SecretStore) {
    private val json = Json { ignoreUnknownKeys = true; encodeDefaults = true }
    private val state = MutableStateFlow(read())

    /** The current settings. */
    val settings: StateFlow<ChatSettings> = state.asStateFlow()

    /** Whether a cloud key is stored (the key itself is never put in UI state). */
    val hasCloudKey: Boolean get() = secrets.get(CLOUD_KEY) != null

    /** Applies [change] and saves the result. */
    fun update(change: (ChatSettings) -> ChatSettings) {
        state.update(change)
        file.parentFile?.mkdirs()
        val temp = File(file.path + ".tmp")
        temp.writeText(json.encodeToString(ChatSettings.serializer(), state.value))
        temp.renameTo(file)
    }

    /** Stores the cloud API key (or forgets it when [key] is blank). */
    fun setCloudKey(key: String) = if (key.isBlank()) secrets.remove(CLOUD_KEY) else secrets.put(CLOUD_KEY, key)

    /** The cloud API key, for the request that needs it. */
    fun cloudKey(): String? = secrets.get(CLOUD_KEY)

    private fun read(): ChatSettings =
        try { json.decodeFromString(ChatSettings.serializer(), file.readText()) } catch (e: Exception) { ChatSettings() }

    private companion object {
        const val CLOUD_KEY = "cloud-api-key"
    }
}
