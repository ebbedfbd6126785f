import com.android.build.api.variant.HasUnitTestBuilder
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
    id("org.jetbrains.kotlin.plugin.serialization") // ChatSettings in the state package is @Serializable
}

android {
    namespace = "dev.pocketlm.sample"
    compileSdk = 35
    ndkVersion = "27.3.13750724" // as android/build.gradle.kts: AGP strips the .so files with it

    defaultConfig {
        applicationId = "dev.pocketlm.sample"
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") } // the ABIs scripts/build-android.sh builds
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures { compose = true }

    packaging {
        // Keep the .so files uncompressed and page-aligned in the APK (loaded in place).
        jniLibs { useLegacyPackaging = false }
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

// src/test holds the host-JVM tests of the view models (JUnit 5 against the real
// engine), run with Maven through ../pom.xml by scripts/test-kotlin.sh, not here.
androidComponents {
    beforeVariants { (it as? HasUnitTestBuilder)?.enableUnitTest = false }
}

dependencies {
    // The library from source: android/ is an included build (settings.gradle.kts).
    implementation("dev.pocketlm:pocketlm-android:0.1.0")

    val composeBom = platform("androidx.compose:compose-bom:2024.12.01")
    implementation(composeBom)
    implementation("androidx.compose.material3:material3")
    implementation("androidx.compose.material:material-icons-core")

    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-viewmodel-compose:2.8.7")
    implementation("androidx.lifecycle:lifecycle-runtime-compose:2.8.7")
    implementation("org.jetbrains.kotlinx:kotlinx-serialization-json:1.8.0")
}
