// Runs in every test file (jest.config.js, setupFilesAfterEnv): temp dirs made with tempDir()
// are removed after the file's last test, so a test cannot forget its own.
import { removeTempDirs } from './tsbuild.js';

afterAll(removeTempDirs);
