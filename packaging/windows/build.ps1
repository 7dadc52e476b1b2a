# Windows recipe (NOT BUILT ON THESE MACHINES): the PyInstaller folder, then the Inno Setup
# installer. Run from the repository root in PowerShell, with Python 3.11+ and Inno Setup 6
# (iscc on PATH):  powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
$ErrorActionPreference = "Stop"
py -3 -m pip install -e ".[package]"
py -3 -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\p2psip.spec
$version = py -3 -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"
iscc "/DAppVersion=$version" packaging\windows\p2psip.iss
Write-Host "dist\p2psip-phone-$version-setup.exe"
