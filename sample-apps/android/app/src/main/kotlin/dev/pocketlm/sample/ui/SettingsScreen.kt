package dev.pocketlm.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.consumeWindowInsets
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.selection.selectable
import androidx.compose.foundation.selection.toggleable
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.RadioButton
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Slider
import androidx.compose.material3.Switch
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableFloatStateOf
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.semantics.Role
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.pocketlm.sample.state.RoutingPolicy
import dev.pocketlm.sample.state.SettingsViewModel
import java.util.Locale

/** Edits ChatSettings (saved by SettingsViewModel on every change) and the cloud key (kept in the Keystore). */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun SettingsScreen(settings: SettingsViewModel, deviceBudgetBytes: Long) {
    val s by settings.settings.collectAsStateWithLifecycle()
    // The key itself is never shown nor kept in UI state beyond this field; not
    // rememberSaveable, so it never lands in the saved instance state.
    var key by remember { mutableStateOf("") }
    var hasKey by remember { mutableStateOf(settings.hasCloudKey) }
    var temperature by rememberSaveable { mutableFloatStateOf(s.temperature) }

    Scaffold(topBar = { TopAppBar(title = { Text("Settings") }) }) { inner ->
        Column(
            verticalArrangement = Arrangement.spacedBy(12.dp),
            modifier = Modifier
                .fillMaxSize()
                .padding(inner)
                .consumeWindowInsets(inner)
                .imePadding()
                .verticalScroll(rememberScrollState())
                .padding(16.dp),
        ) {
            Heading("Answers")
            Hint("Prompt and sampling apply to the next conversation; context length and memory budget to the next model load.")
            TextSetting("System prompt", s.systemPrompt, singleLine = false) { v -> settings.update { it.copy(systemPrompt = v) } }

            Text("Temperature: " + String.format(Locale.ROOT, "%.2f", temperature))
            Slider(
                value = temperature,
                onValueChange = { temperature = it },
                onValueChangeFinished = { settings.update { it.copy(temperature = temperature) } },
                valueRange = 0f..2f,
                steps = 39, // 0.05 apart
            )
            IntSetting("Max tokens per answer", s.maxTokens, 1..32_768) { v -> settings.update { it.copy(maxTokens = v) } }
            IntSetting("Context length (tokens)", s.contextLength, 256..131_072) { v -> settings.update { it.copy(contextLength = v) } }
            IntSetting(
                "Memory budget (MB)",
                s.memoryBudgetMb,
                256..65_536,
                hint = "This phone: about ${deviceBudgetBytes shr 20} MB (40% of its RAM). The Models tab judges fit with the budget the app started with.",
            ) { v -> settings.update { it.copy(memoryBudgetMb = v) } }

            Heading("Routing")
            Hint("Applies to conversations started after a change. With an endpoint, \"prefer device\" escalates when the phone cannot answer; e-mail addresses and phone numbers are redacted first when redaction is on.")
            RoutingPolicy.entries.forEach { policy ->
                Row(
                    verticalAlignment = Alignment.CenterVertically,
                    modifier = Modifier
                        .fillMaxWidth()
                        .selectable(
                            selected = s.routing == policy,
                            onClick = { settings.update { it.copy(routing = policy) } },
                            role = Role.RadioButton,
                        ),
                ) {
                    RadioButton(selected = s.routing == policy, onClick = null)
                    Text(policy.label(), Modifier.padding(start = 8.dp))
                }
            }
            TextSetting("Cloud endpoint", s.cloudEndpoint, keyboard = KeyboardType.Uri) { v -> settings.update { it.copy(cloudEndpoint = v) } }
            TextSetting("Cloud model", s.cloudModel) { v -> settings.update { it.copy(cloudModel = v) } }

            OutlinedTextField(
                value = key,
                onValueChange = { key = it },
                label = { Text("Cloud API key") },
                supportingText = { Text(if (hasKey) "A key is stored (encrypted with the Android Keystore)." else "No key stored.") },
                visualTransformation = PasswordVisualTransformation(),
                keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Password),
                singleLine = true,
                modifier = Modifier.fillMaxWidth(),
            )
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Button(
                    onClick = {
                        settings.setCloudKey(key)
                        key = ""
                        hasKey = settings.hasCloudKey
                    },
                    enabled = key.isNotBlank(),
                ) { Text("Save key") }
                OutlinedButton(
                    onClick = {
                        settings.setCloudKey("")
                        hasKey = settings.hasCloudKey
                    },
                    enabled = hasKey,
                ) { Text("Remove key") }
            }

            Heading("Privacy")
            Row(
                verticalAlignment = Alignment.CenterVertically,
                modifier = Modifier
                    .fillMaxWidth()
                    .toggleable(
                        value = s.redaction,
                        onValueChange = { v -> settings.update { it.copy(redaction = v) } },
                        role = Role.Switch,
                    ),
            ) {
                Column(Modifier.weight(1f)) {
                    Text("Redact before sending to the cloud")
                    Hint("E-mail addresses, phone numbers and the like are removed before anything leaves the phone.")
                }
                Switch(checked = s.redaction, onCheckedChange = null)
            }
        }
    }
}

@Composable
private fun Heading(text: String) {
    Text(text, style = MaterialTheme.typography.titleMedium, color = MaterialTheme.colorScheme.primary)
}

@Composable
private fun Hint(text: String) {
    Text(text, style = MaterialTheme.typography.bodySmall, color = MaterialTheme.colorScheme.onSurfaceVariant)
}

/** A text setting. The field keeps its own text (saved with the screen) and hands every change to [onChange]. */
@Composable
private fun TextSetting(
    label: String,
    value: String,
    singleLine: Boolean = true,
    keyboard: KeyboardType = KeyboardType.Text,
    onChange: (String) -> Unit,
) {
    var text by rememberSaveable { mutableStateOf(value) }
    OutlinedTextField(
        value = text,
        onValueChange = {
            text = it
            onChange(it)
        },
        label = { Text(label) },
        singleLine = singleLine,
        minLines = if (singleLine) 1 else 3,
        keyboardOptions = KeyboardOptions(keyboardType = keyboard),
        modifier = Modifier.fillMaxWidth(),
    )
}

/** A whole-number setting: saved while the text is a number in [range], flagged otherwise. */
@Composable
private fun IntSetting(label: String, value: Int, range: IntRange, hint: String? = null, onChange: (Int) -> Unit) {
    var text by rememberSaveable { mutableStateOf(value.toString()) }
    val valid = text.toIntOrNull()?.let { it in range } ?: false
    val supporting = if (valid) hint else "A whole number from ${range.first} to ${range.last}"
    OutlinedTextField(
        value = text,
        onValueChange = { t ->
            text = t
            t.toIntOrNull()?.takeIf { it in range }?.let(onChange)
        },
        label = { Text(label) },
        isError = !valid,
        supportingText = if (supporting != null) { { Text(supporting) } } else null,
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Number),
        singleLine = true,
        modifier = Modifier.fillMaxWidth(),
    )
}

private fun RoutingPolicy.label(): String = when (this) {
    RoutingPolicy.DEVICE_ONLY -> "On this phone only"
    RoutingPolicy.PREFER_DEVICE -> "Phone first, cloud when needed"
    RoutingPolicy.CLOUD_ONLY -> "Cloud only"
}
