fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = webclip::preprocess::decode(&std::fs::read(&a[1]).unwrap()).unwrap();
    std::fs::write(&a[2], &img.data).unwrap();
    println!("{} {}", img.width, img.height);
}
